import WebSocket from 'ws'
import type { Test } from 'tap'

/** The JSON record separator of the SignalR text protocol. */
export const RS = '\u001e'

export type RawRecord = Record<string, unknown>

/** One record (JSON text + RS); strings are taken as already-serialized JSON. */
export function record (message: RawRecord | string): string {
  return (typeof message === 'string' ? message : JSON.stringify(message)) + RS
}

/** Several records in one string, for sending them in a single WebSocket frame. */
export function frame (...messages: Array<RawRecord | string>): string {
  return messages.map(record).join('')
}

export function handshakeRequest (protocol = 'json', version = 1): string {
  return record({ protocol, version })
}

/** Invocation (type 1); without `invocationId` it is fire-and-forget. */
export function invocation (target: string, args: unknown[], invocationId?: string): RawRecord {
  // The official client writes `type` last, so the server must not depend on key order.
  return invocationId === undefined
    ? { target, arguments: args, type: 1 }
    : { invocationId, target, arguments: args, type: 1 }
}

export function completion (invocationId: string, fields: { result?: unknown, error?: string } = {}): RawRecord {
  return { invocationId, ...fields, type: 3 }
}

export const ping: RawRecord = { type: 6 }
export const closeMessage: RawRecord = { type: 7 }

export interface CloseInfo {
  code: number
  reason: string
}

export interface RawClient {
  readonly ws: WebSocket
  /** Every WebSocket message received, as text, in order (handshake response included). */
  readonly frames: string[]
  /** Next record, parsed. Rejects once the socket is closed and nothing is left. */
  next (): Promise<RawRecord>
  /** Next record as the exact text the server wrote (without RS). */
  nextText (): Promise<string>
  /** Sends the given records in ONE WebSocket message. */
  send (...messages: Array<RawRecord | string>): void
  /** Sends text as is, in one WebSocket message. */
  sendText (text: string): void
  /** Resolves when the socket has closed. */
  readonly closed: Promise<CloseInfo>
  readonly isClosed: boolean
}

export interface RawConnectOptions {
  /** Send `{"protocol":"json","version":1}` and expect `{}` before resolving. */
  handshake?: boolean
  /** Keep `{"type":6}` out of `next()`. */
  ignorePings?: boolean
  /** Headers for the upgrade request. */
  headers?: Record<string, string>
}

type QueueItem = { text: string } | { error: Error }

/** A socket already upgraded, wrapped in a record queue. */
function wrap (ws: WebSocket, options: RawConnectOptions): RawClient {
  const frames: string[] = []
  const items: QueueItem[] = []
  const waiters: Array<(item: QueueItem) => void> = []
  let closedError: Error | null = null
  let isClosed = false

  const push = (item: QueueItem): void => {
    const waiter = waiters.shift()
    if (waiter !== undefined) waiter(item)
    else items.push(item)
  }

  ws.on('message', (data: Buffer | ArrayBuffer | Buffer[]) => {
    const text = Buffer.isBuffer(data) ? data.toString('utf8') : Array.isArray(data) ? Buffer.concat(data).toString('utf8') : Buffer.from(data).toString('utf8')
    frames.push(text)
    // The official client parses every WebSocket message on its own: a partial record breaks it.
    if (!text.endsWith(RS)) {
      push({ error: new Error(`server sent a message that does not end with a record separator: ${JSON.stringify(text)}`) })
      return
    }
    for (const part of text.slice(0, -1).split(RS)) {
      if (options.ignorePings === true && part === '{"type":6}') continue
      push({ text: part })
    }
  })

  const closed = new Promise<CloseInfo>((resolve) => {
    ws.on('close', (code: number, reason: Buffer) => {
      isClosed = true
      closedError = new Error(`socket closed (code ${code}) before the next record arrived`)
      for (const waiter of waiters.splice(0)) waiter({ error: closedError })
      resolve({ code, reason: reason.toString('utf8') })
    })
  })
  // 'close' follows every 'error'; this only keeps the error from being thrown.
  ws.on('error', () => {})

  const nextItem = (): Promise<QueueItem> => {
    const item = items.shift()
    if (item !== undefined) return Promise.resolve(item)
    if (closedError !== null) return Promise.resolve({ error: closedError })
    return new Promise((resolve) => { waiters.push(resolve) })
  }

  const nextText = async (): Promise<string> => {
    const item = await nextItem()
    if ('error' in item) throw item.error
    return item.text
  }

  return {
    ws,
    frames,
    nextText,
    async next () {
      const text = await nextText()
      return JSON.parse(text) as RawRecord
    },
    send (...messages) {
      ws.send(frame(...messages))
    },
    sendText (text) {
      ws.send(text)
    },
    closed,
    get isClosed () { return isClosed }
  }
}

/** An HTTP answer to an upgrade request that was not accepted. */
export class UpgradeRefused extends Error {
  constructor (readonly statusCode: number, readonly body: string) {
    super(`WebSocket upgrade refused with ${statusCode}: ${body}`)
    this.name = 'UpgradeRefused'
  }
}

function refusal (ws: WebSocket): Promise<never> {
  return new Promise((_resolve, reject) => {
    ws.on('unexpected-response', (request, response) => {
      let body = ''
      response.setEncoding('utf8')
      response.on('data', (chunk: string) => { body += chunk })
      response.on('end', () => {
        request.destroy()
        reject(new UpgradeRefused(response.statusCode ?? 0, body))
      })
      response.on('error', () => { reject(new UpgradeRefused(response.statusCode ?? 0, body)) })
    })
  })
}

/**
 * Opens a raw WebSocket to `url` (ws://host/hub[?id=token]). Closed in
 * teardown. Rejects with `UpgradeRefused` when the server answers with a
 * status other than 101.
 */
export async function rawConnect (t: Test, url: string, options: RawConnectOptions = {}): Promise<RawClient> {
  const ws = new WebSocket(url, { headers: options.headers ?? {} })
  t.teardown(() => { if (ws.readyState !== WebSocket.CLOSED) ws.terminate() })
  // Wrapped before it opens so that nothing the server sends early is missed.
  const client = wrap(ws, options)
  const opened = new Promise<void>((resolve, reject) => {
    ws.once('open', () => { resolve() })
    ws.once('close', () => { reject(new Error('socket closed before it opened')) })
  })
  await Promise.race([opened, refusal(ws)])
  if (options.handshake === true) {
    ws.send(handshakeRequest())
    const answer = await client.nextText()
    if (answer !== '{}') throw new Error(`handshake refused: ${answer}`)
  }
  return client
}

/** The status an upgrade request gets: 101 (the socket is closed right away) or the HTTP refusal. */
export async function upgradeStatus (url: string): Promise<{ statusCode: number, body: string }> {
  const ws = new WebSocket(url)
  ws.on('error', () => {})
  try {
    await Promise.race([new Promise<void>((resolve) => { ws.once('open', () => { resolve() }) }), refusal(ws)])
  } catch (err) {
    if (err instanceof UpgradeRefused) return { statusCode: err.statusCode, body: err.body }
    throw err
  }
  const closed = new Promise((resolve) => { ws.once('close', resolve) })
  ws.close()
  await closed
  return { statusCode: 101, body: '' }
}

/**
 * Sends an upgrade request whose Sec-WebSocket-Key is invalid. The hub route
 * decides first (404 unknown token, 409 taken); when it lets the request
 * through, `ws` refuses the bad key with 400, so the connection slot is looked
 * up without being consumed.
 */
export async function probeUpgrade (url: string): Promise<number> {
  const ws = new WebSocket(url, {
    finishRequest (request) {
      request.setHeader('Sec-WebSocket-Key', 'not-a-valid-key')
      request.end()
    }
  })
  ws.on('error', () => {})
  try {
    await Promise.race([new Promise<void>((resolve) => { ws.once('open', () => { resolve() }) }), refusal(ws)])
  } catch (err) {
    if (err instanceof UpgradeRefused) return err.statusCode
    throw err
  }
  ws.terminate()
  throw new Error('the probe with an invalid key was upgraded')
}

/** POST {hubUrl}/negotiate with the given query string (no leading '?'). */
export async function negotiateRaw (baseUrl: string, query = 'negotiateVersion=1'): Promise<{ status: number, contentType: string | null, body: RawRecord }> {
  const res = await fetch(`${baseUrl}/negotiate${query === '' ? '' : `?${query}`}`, { method: 'POST' })
  return { status: res.status, contentType: res.headers.get('content-type'), body: await res.json() as RawRecord }
}
