/**
 * The load generator's HTTP transports: lean clients of SignalR long polling,
 * SignalR Server-Sent Events and engine.io (Socket.IO) polling, on node:http
 * with one keep-alive pool for the whole process. They carry whatever the
 * wires of bench/load.ts write and hand back what the server sends, as a
 * WebSocket would; the wires speak the hub protocols on top.
 *
 * They behave like the official clients where it changes the server's work:
 * one poll (or one event stream) and at most one POST per connection at a
 * time, and data written while a POST is under way goes in the next POST,
 * joined (the SignalR client's TransportSendQueue, engine.io's write buffer).
 */
import http, { type ClientRequest, type IncomingMessage } from 'node:http'

/** What a wire writes to: a WebSocket, or one of the HTTP links below. */
export interface Link {
  /** A string goes as text, a Buffer as binary. */
  send (data: string | Buffer): void
  /** Ends the link at once, without telling the server. */
  terminate (): void
}

/** What a link reports. */
export interface LinkEvents {
  /** The link may carry messages (WebSocket open, first poll answered, event stream open). */
  open (): void
  /** Data from the server: one WebSocket frame, one poll's body, one event's data or one engine.io packet. */
  message (data: Buffer | string): void
  error (err: Error): void
  /** The server ended the link. */
  close (why: string): void
}

const POLL_TIMEOUT_MS = 120_000
/**
 * How long a pooled socket may sit unused: under the 5 s keep-alive timeout
 * of Node's HTTP server (Socket.IO's), so that the client, not the server,
 * closes idle ones. Requests set their own timeout while they use a socket.
 */
const IDLE_SOCKET_MS = 4_000
/** What the link's own terminate() destroys its requests with: no code, so never taken for a reset and retried. */
const CANCELLED = new Error('cancelled by the client')

// Every poll and POST of the process share one pool; a socket whose answer
// has just ended is reused by the next request instead of a new connection.
let pool: http.Agent | null = null
function agent (): http.Agent {
  pool ??= new http.Agent({ keepAlive: true, maxSockets: Infinity, maxFreeSockets: 100_000, timeout: IDLE_SOCKET_MS })
  return pool
}

/** Stops every pooled socket: the end of the run. */
export function closeHttpLinks (): void {
  pool?.destroy()
}

/**
 * One request; `done` gets the status and the whole body, or the error, once.
 * A pooled socket that the server closed just as it was reused (its
 * keep-alive timeout) never carried the request: it is sent again on a fresh
 * socket, once, as browsers and Node's documentation do.
 */
function request (port: number, method: string, path: string, headers: http.OutgoingHttpHeaders, body: string | Buffer | null,
  done: (err: Error | null, status: number, body: Buffer) => void, retried = false): ClientRequest {
  let settled = false
  const finish = (err: Error | null, status: number, answer: Buffer): void => {
    if (settled) return
    settled = true
    done(err, status, answer)
  }
  const req = http.request({ host: '127.0.0.1', port, method, path, headers, agent: agent(), timeout: POLL_TIMEOUT_MS }, (res) => {
    const chunks: Buffer[] = []
    res.on('data', (chunk: Buffer) => { chunks.push(chunk) })
    res.on('end', () => finish(null, res.statusCode ?? 0, chunks.length === 1 ? chunks[0]! : Buffer.concat(chunks)))
    res.on('error', (err) => finish(err, 0, Buffer.alloc(0)))
  })
  req.on('timeout', () => req.destroy(new Error(`${method} ${path}: no answer within ${POLL_TIMEOUT_MS} ms`)))
  req.on('error', (err: NodeJS.ErrnoException) => {
    if (!settled && !retried && req.reusedSocket && err.code === 'ECONNRESET') {
      settled = true
      request(port, method, path, headers, body, done, true)
      return
    }
    finish(err, 0, Buffer.alloc(0))
  })
  req.end(body ?? undefined)
  return req
}

/**
 * Client-to-server data as POSTs, one at a time: what is written meanwhile
 * waits and goes joined in the next one (`separator` between engine.io packets).
 */
class Poster {
  private queue: Array<string | Buffer> = []
  private req: ClientRequest | null = null
  stopped = false

  constructor (private readonly port: number, private readonly path: () => string, private readonly separator: string,
    private readonly events: LinkEvents) {}

  send (data: string | Buffer): void {
    this.queue.push(data)
    if (this.req === null) this.post()
  }

  stop (): void {
    this.stopped = true
    this.req?.destroy(CANCELLED)
  }

  private post (): void {
    const queue = this.queue
    this.queue = []
    const binary = Buffer.isBuffer(queue[0])
    const body = binary
      ? (queue.length === 1 ? queue[0] as Buffer : Buffer.concat(queue as Buffer[]))
      : queue.join(this.separator)
    const headers = {
      'content-type': binary ? 'application/octet-stream' : 'text/plain;charset=UTF-8',
      'content-length': Buffer.byteLength(body)
    }
    this.req = request(this.port, 'POST', this.path(), headers, body, (err, status, answer) => {
      this.req = null
      if (this.stopped) return
      if (err !== null) this.events.error(err)
      else if (status !== 200) this.events.error(new Error(`POST: HTTP ${status}: ${answer.toString()}`))
      else if (this.queue.length > 0) this.post()
    })
  }
}

/**
 * Polls one after another until stopped. `answer` takes each answered poll
 * and says whether to poll again.
 */
function pollingLink (port: number, poster: Poster, path: () => string, events: LinkEvents,
  answer: (status: number, body: Buffer) => boolean): Link {
  let poll: ClientRequest | null = null
  function next (): void {
    poll = request(port, 'GET', path(), {}, null, onPoll)
  }
  function onPoll (err: Error | null, status: number, body: Buffer): void {
    poll = null
    if (poster.stopped) return
    if (err !== null) events.error(err)
    else if (answer(status, body) && !poster.stopped) next()
  }
  next()
  return {
    send (data) { poster.send(data) },
    terminate () {
      poster.stop()
      poll?.destroy(CANCELLED)
    }
  }
}

/**
 * SignalR long polling on a negotiated connection: the first GET answers at
 * once (the connection exists), then each GET waits for data; 204 means the
 * server ended the connection.
 */
export function longPollingLink (port: number, token: string, events: LinkEvents): Link {
  const base = `/hub?id=${encodeURIComponent(token)}`
  let opened = false
  // The official client's cache buster.
  return pollingLink(port, new Poster(port, () => base, '', events), () => `${base}&_=${Date.now()}`, events, (status, body) => {
    if (status === 204) {
      events.close('204: the server ended the connection')
      return false
    }
    if (status !== 200) {
      events.error(new Error(`poll: HTTP ${status}: ${body.toString()}`))
      return false
    }
    if (!opened) {
      opened = true
      events.open()
    }
    if (body.length > 0) events.message(body)
    return true
  })
}

/**
 * SignalR Server-Sent Events on a negotiated connection: one text/event-stream
 * GET; each event's data (its `data:` lines joined by LF) is one message.
 */
export function serverSentEventsLink (port: number, token: string, events: LinkEvents): Link {
  const path = `/hub?id=${encodeURIComponent(token)}`
  const poster = new Poster(port, () => path, '', events)
  let pending = ''
  let data: string[] = []

  function onText (chunk: string): void {
    pending += chunk
    let start = 0
    for (let end = pending.indexOf('\n'); end !== -1; end = pending.indexOf('\n', start)) {
      const line = pending.slice(start, end > start && pending.charCodeAt(end - 1) === 13 ? end - 1 : end)
      start = end + 1
      if (line === '') {
        if (data.length > 0) events.message(data.length === 1 ? data[0]! : data.join('\n'))
        data = []
      } else if (line.startsWith('data:')) {
        data.push(line.charCodeAt(5) === 32 ? line.slice(6) : line.slice(5))
      }
      // Comments (':…') and other fields carry nothing SignalR uses.
    }
    pending = pending.slice(start)
  }

  // No timeout: the stream stays open, silent between events, for the whole run.
  const stream = http.request({ host: '127.0.0.1', port, method: 'GET', path, agent: agent(), timeout: 0, headers: { accept: 'text/event-stream' } },
    (res: IncomingMessage) => {
      if (res.statusCode !== 200) {
        events.error(new Error(`event stream: HTTP ${res.statusCode}`))
        res.resume()
        return
      }
      res.setEncoding('utf8')
      res.on('data', onText)
      res.on('end', () => { if (!poster.stopped) events.close('the server ended the event stream') })
      events.open()
    })
  stream.on('error', (err) => { if (!poster.stopped) events.error(err) })
  stream.end()
  return {
    send (data) { poster.send(data) },
    terminate () {
      poster.stop()
      stream.destroy(CANCELLED)
    }
  }
}

/**
 * engine.io v4 polling (what Socket.IO's `polling` transport is): the first
 * GET opens the session and answers its id in the open packet; later GETs
 * and POSTs name it. Packets in one body are separated by RS (0x1e).
 */
export function enginePollingLink (port: number, events: LinkEvents): Link {
  let sid = ''
  let n = 0
  // engine.io's clients add a changing `t` against caches.
  const path = (): string => `/socket.io/?EIO=4&transport=polling&t=${(n++).toString(36)}${sid === '' ? '' : `&sid=${sid}`}`
  return pollingLink(port, new Poster(port, path, '\u001e', events), path, events, (status, body) => {
    if (status !== 200) {
      events.error(new Error(`poll: HTTP ${status}: ${body.toString()}`))
      return false
    }
    const packets = body.toString().split('\u001e')
    if (sid === '') {
      const open = packets[0] ?? ''
      const id = open.startsWith('0') ? (JSON.parse(open.slice(1)) as { sid?: unknown }).sid : undefined
      if (typeof id !== 'string') {
        events.error(new Error(`engine.io: no open packet: ${open}`))
        return false
      }
      sid = id
      events.open()
    }
    for (const packet of packets) {
      if (packet === '1') {
        events.close('engine.io close packet')
        return false
      }
      events.message(packet)
    }
    return true
  })
}
