/**
 * The load generator: one process, raw `ws` client sockets (or the lean HTTP
 * clients of ./http-links.ts) speaking each server's wire format directly (the
 * official clients would be the bottleneck). Started by bench/run.ts with a JSON config in argv[2]; prints
 * `RESULT {json}` on stdout. Measures the server's CPU itself, from /proc at
 * the exact edges of the measured window.
 *
 * Every broadcast and group payload is `~<performance.now()>~<seq>~xxx…`:
 * the sender and the receivers share this process, hence this clock.
 */
import http from 'node:http'
import { performance } from 'node:perf_hooks'
import { createInterface } from 'node:readline'
import { setTimeout as sleep } from 'node:timers/promises'
import { Packr, Unpackr } from 'msgpackr'
import WebSocket, { type RawData } from 'ws'
import { closeHttpLinks, enginePollingLink, longPollingLink, serverSentEventsLink, type Link, type LinkEvents } from './http-links.js'
import { cpuSeconds, cpuSplit } from './proc.js'

/** The WebSocket servers, then those over HTTP long polling and Server-Sent Events. */
export type ServerName = 'ws' | 'socketio' | 'signalr-json' | 'signalr-msgpack' |
  'socketio-polling' | 'signalr-lp-json' | 'signalr-lp-msgpack' | 'signalr-sse-json'
export type ScenarioKind = 'echo' | 'broadcast' | 'group' | 'storm'

export interface LoadConfig {
  server: ServerName
  scenario: ScenarioKind
  port: number
  serverPid: number
  clockTicks: number
  connections: number
  /** group scenario: connection i joins group `g<i % groups>`. */
  groups: number
  /** broadcast/group: sends whose deliveries are not all in yet, at most. */
  window: number
  warmMs: number
  measureMs: number
  connectConcurrency: number
  payloadBytes: number
  /** storm: keep the connections open after RESULT until `close` arrives on stdin. */
  hold: boolean
  /**
   * Scale-out (bench/redis.ts): more servers of the same hub. The connections
   * are split in equal contiguous blocks over [port, ...extraPorts], so every
   * group has members on each server; the sender, connection 0, is on `port`.
   */
  extraPorts?: number[]
  /** More processes (other servers, redis-server) whose CPU is read at the window edges too. */
  otherPids?: number[]
}

export interface LoadResult {
  server: ServerName
  scenario: ScenarioKind
  connections: number
  connectMs: number
  /** The measured window (storm: the connect phase). */
  windowMs: number
  /** Round trips (echo), deliveries (broadcast, group) or connections (storm) in the window. */
  ops: number
  /** Broadcasts or group sends started in the window. */
  sends: number
  latencyMs: { p50: number, p99: number, max: number, samples: number } | null
  serverCpuSec: number
  /** The part of serverCpuSec spent in the kernel (stime): socket writes and reads, mostly. */
  serverSysSec?: number
  clientCpuSec: number
  errors: number
  errorSamples: string[]
  /** CPU seconds of each of `otherPids`, same order. */
  otherCpuSec?: number[]
  /** With extraPorts: deliveries to connections on the sender's server and on the others, apart. */
  split?: { sameOps: number, crossOps: number, same: LoadResult['latencyMs'], cross: LoadResult['latencyMs'] }
}

const OPEN_TIMEOUT_MS = 15_000
const DRAIN_TIMEOUT_MS = 10_000
const HOLD_TIMEOUT_MS = 60_000
const SAMPLE_CAP = 1_000_000
const ECHO_PAYLOAD = 'the quick brown fox jumps over the lazy dog'

const config = JSON.parse(process.argv[2] ?? '') as LoadConfig
const ports = [config.port, ...(config.extraPorts ?? [])]
const otherPids = config.otherPids ?? []

// ---------------------------------------------------------------- bookkeeping

let errors = 0
const errorSamples: string[] = []
function fail (message: string): void {
  errors++
  if (errorSamples.length < 5) errorSamples.push(message)
}

/** Latency samples; past the cap, reservoir sampling keeps them representative. */
class Samples {
  private readonly data = new Float64Array(SAMPLE_CAP)
  private seen = 0
  add (value: number): void {
    if (this.seen < SAMPLE_CAP) {
      this.data[this.seen] = value
    } else {
      const slot = Math.floor(Math.random() * (this.seen + 1))
      if (slot < SAMPLE_CAP) this.data[slot] = value
    }
    this.seen++
  }

  summary (): LoadResult['latencyMs'] {
    const n = Math.min(this.seen, SAMPLE_CAP)
    if (n === 0) return null
    const sorted = this.data.slice(0, n).sort()
    const at = (q: number): number => sorted[Math.min(n - 1, Math.floor(q * n))]!
    return { p50: at(0.5), p99: at(0.99), max: sorted[n - 1]!, samples: this.seen }
  }
}

const latency = new Samples()
/** Scale-out: deliveries to connections on the sender's server and on the others. */
const split = ports.length > 1 ? { sameOps: 0, crossOps: 0, same: new Samples(), cross: new Samples() } : null
let measuring = false
let running = false
let ops = 0
let sends = 0

// ---------------------------------------------------------------- connections

type Pending = 'none' | 'echo' | 'join'

class Conn {
  link!: Link
  ready = false
  closing = false
  pending: Pending = 'none'
  /** SignalR invocation id / Socket.IO ack id of the pending call. */
  callId = 0
  sentAt = 0
  lastSend = 0
  readonly port: number
  constructor (readonly index: number) {
    this.port = ports[Math.min(ports.length - 1, Math.floor(index * ports.length / config.connections))]!
  }

  /** A string goes as a text frame, a Buffer as a binary frame. */
  send (data: string | Buffer): void {
    this.lastSend = performance.now()
    this.link.send(data)
  }
}

interface Wire {
  /** Opens `conn.link`, runs the protocol handshake; resolves once calls may be sent. */
  open (conn: Conn): Promise<void>
  echo (conn: Conn, payload: string): void
  broadcast (conn: Conn, payload: string): void
  group (conn: Conn, group: string, payload: string): void
  join (conn: Conn, group: string): void
  stop (): void
}

/** Callbacks the scenario sets; the wires call them. */
const on = {
  echo: (_conn: Conn, _result: unknown): void => {},
  joined: (_conn: Conn): void => {},
  deliver: (_text: string, _conn: Conn): void => {}
}

function completeCall (conn: Conn, result: unknown): void {
  const kind = conn.pending
  conn.pending = 'none'
  if (kind === 'echo') on.echo(conn, result)
  else if (kind === 'join') on.joined(conn)
  else fail(`connection ${conn.index}: a reply nobody waited for`)
}

/** Opens a link for a connection: a WebSocket, or an HTTP transport of ./http-links.ts. */
type Dial = (events: LinkEvents) => Link

function wsLink (url: string): Dial {
  return (events) => {
    const ws = new WebSocket(url, { perMessageDeflate: false, skipUTF8Validation: true })
    ws.on('open', events.open)
    ws.on('message', (data: RawData) => events.message(data as Buffer))
    ws.on('error', events.error)
    ws.on('close', (code, reason) => events.close(`${code} ${reason.toString()}`))
    return ws
  }
}

/**
 * Creates the link and settles when `handshake` calls `done` (or on
 * error/close/timeout). Later errors and closes that nobody asked for count
 * as benchmark errors.
 */
function openLink (conn: Conn, dial: Dial, onOpen: () => void, onMessage: (data: Buffer | string) => void,
  setDone: (done: (err?: Error) => void) => void): Promise<void> {
  return new Promise<void>((resolve, reject) => {
    let settled = false
    const timer = setTimeout(() => done(new Error(`connection ${conn.index}: not ready after ${OPEN_TIMEOUT_MS} ms`)), OPEN_TIMEOUT_MS)
    function done (err?: Error): void {
      if (settled) return
      settled = true
      clearTimeout(timer)
      if (err === undefined) {
        conn.ready = true
        resolve()
      } else {
        conn.closing = true
        conn.link.terminate()
        reject(err)
      }
    }
    setDone(done)
    conn.link = dial({
      open: onOpen,
      message: onMessage,
      error (err) {
        if (!settled) done(err)
        else if (!conn.closing) fail(`connection ${conn.index}: ${err.message}`)
      },
      close (why) {
        if (!settled) done(new Error(`connection ${conn.index}: closed during the handshake (${why})`))
        else if (!conn.closing) fail(`connection ${conn.index}: closed by the server (${why})`)
      }
    })
  })
}

/** What both SignalR wires share: negotiate, and the client's keep-alive. */
interface SignalRSession {
  /** POST /hub/negotiate on `port`; resolves to the connection token. */
  negotiate (port: number): Promise<string>
  /** From now on `conn` gets the keep-alive `ping` whenever it has been silent. */
  track (conn: Conn): void
  stop (): void
}

function signalrSession (ping: (conn: Conn) => void): SignalRSession {
  // A bounded keep-alive pool for negotiate: no more HTTP sockets than
  // handshakes under way, and none left behind once connected.
  const agent = new http.Agent({ keepAlive: true, maxSockets: config.connectConcurrency })
  const conns = new Set<Conn>()
  // The official client pings when it has sent nothing for 15 s; the server
  // drops clients silent for 30 s.
  const keepAlive = setInterval(() => {
    const due = performance.now() - 15_000
    for (const conn of conns) {
      if (conn.ready && !conn.closing && conn.lastSend < due) ping(conn)
    }
  }, 5_000)

  function negotiate (port: number): Promise<string> {
    return new Promise((resolve, reject) => {
      const req = http.request({
        host: '127.0.0.1',
        port,
        method: 'POST',
        path: '/hub/negotiate?negotiateVersion=1',
        agent,
        headers: { 'content-length': '0' },
        timeout: OPEN_TIMEOUT_MS
      }, (res) => {
        let body = ''
        res.setEncoding('utf8')
        res.on('data', (chunk: string) => { body += chunk })
        res.on('end', () => {
          try {
            if (res.statusCode !== 200) throw new Error(`negotiate: HTTP ${res.statusCode}: ${body}`)
            const answer = JSON.parse(body) as { connectionToken?: string, error?: string }
            if (answer.error !== undefined) throw new Error(`negotiate: ${answer.error}`)
            if (typeof answer.connectionToken !== 'string') throw new Error(`negotiate: no connectionToken in ${body}`)
            resolve(answer.connectionToken)
          } catch (err) {
            reject(err)
          }
        })
      })
      req.on('timeout', () => req.destroy(new Error('negotiate: timed out')))
      req.on('error', reject)
      req.end()
    })
  }

  return {
    negotiate,
    track (conn) { conns.add(conn) },
    stop () {
      clearInterval(keepAlive)
      agent.destroy()
    }
  }
}

const RS = '\u001e'
/** See signalrMsgpackWire's onFrame: the MessagePack client may skip decoding deliveries, for comparison. */
const LEAN_DELIVERIES = process.env.BENCH_MSGPACK_DELIVERIES === 'skip'

/** How a SignalR wire reaches the hub once negotiated: which transport, and whether the client pings. */
interface SignalRTransport {
  dial (conn: Conn, token: string): Dial
  /** Long polling has no pings: each poll is its own keep-alive (the official client's inherentKeepAlive). */
  pings: boolean
}

const SIGNALR_TRANSPORTS = {
  webSockets: { dial: (conn, token) => wsLink(`ws://127.0.0.1:${conn.port}/hub?id=${encodeURIComponent(token)}`), pings: true },
  longPolling: { dial: (conn, token) => (events) => longPollingLink(conn.port, token, events), pings: false },
  serverSentEvents: { dial: (conn, token) => (events) => serverSentEventsLink(conn.port, token, events), pings: true }
} satisfies Record<string, SignalRTransport>

// SignalR JSON: negotiate, then the transport with the connection token.
function signalrJsonWire (transport: SignalRTransport): Wire {
  const session = signalrSession((conn) => conn.send('{"type":6}' + RS))

  function onRecord (conn: Conn, record: string, done: (err?: Error) => void): void {
    if (!conn.ready) {
      if (record === '{}') done()
      else done(new Error(`connection ${conn.index}: handshake refused: ${record}`))
      return
    }
    // Only broadcast payloads hold '~': they skip JSON.parse, as a lean client would.
    if (record.includes('~')) {
      on.deliver(record, conn)
      return
    }
    const message = JSON.parse(record) as { type: number, invocationId?: string, result?: unknown, error?: string }
    switch (message.type) {
      case 3:
        if (message.error !== undefined) fail(`connection ${conn.index}: ${message.error}`)
        if (message.invocationId !== String(conn.callId)) fail(`connection ${conn.index}: completion for ${message.invocationId}, expected ${conn.callId}`)
        completeCall(conn, message.result)
        break
      case 6:
        break
      case 7:
        fail(`connection ${conn.index}: close message: ${record}`)
        break
      default:
        fail(`connection ${conn.index}: unexpected message: ${record}`)
    }
  }

  function invoke (conn: Conn, target: string, args: string, pending: Pending): void {
    conn.pending = pending
    conn.callId++
    conn.send(`{"type":1,"invocationId":"${conn.callId}","target":"${target}","arguments":${args}}${RS}`)
  }

  return {
    async open (conn) {
      const token = await session.negotiate(conn.port)
      let done: (err?: Error) => void = () => {}
      await openLink(conn, transport.dial(conn, token),
        () => conn.send('{"protocol":"json","version":1}' + RS),
        (data) => {
          const text = data.toString()
          let start = 0
          while (start < text.length) {
            let end = text.indexOf(RS, start)
            if (end === -1) end = text.length
            onRecord(conn, text.slice(start, end), done)
            start = end + 1
          }
        },
        (d) => { done = d })
      if (transport.pings) session.track(conn)
    },
    echo (conn, payload) { invoke(conn, 'Echo', `[${JSON.stringify(payload)}]`, 'echo') },
    broadcast (conn, payload) {
      conn.send(`{"type":1,"target":"Broadcast","arguments":[${JSON.stringify(payload)}]}${RS}`)
    },
    group (conn, group, payload) {
      conn.send(`{"type":1,"target":"GroupSend","arguments":[${JSON.stringify(group)},${JSON.stringify(payload)}]}${RS}`)
    },
    join (conn, group) { invoke(conn, 'Join', `[${JSON.stringify(group)}]`, 'join') },
    stop () { session.stop() }
  }
}

/*
 * SignalR MessagePack: the same negotiate and JSON handshake (a text frame),
 * then binary frames of varint-length-prefixed MessagePack arrays. Every
 * message is decoded, deliveries included, as a real client would.
 */
function signalrMsgpackWire (transport: SignalRTransport): Wire {
  const packr = new Packr({ useRecords: false, variableMapSize: true })
  const unpackr = new Unpackr({ useRecords: false, mapsAsObjects: true })
  const NO_HEADERS = {}
  const PING = Buffer.from([0x02, 0x91, 0x06])
  const session = signalrSession((conn) => conn.send(PING))

  /** One message: its length as a varint (7 bits a byte, low group first), then the array. */
  function frame (message: unknown[]): Buffer {
    // packr reuses its buffer across calls: copy out before the next pack.
    const body = packr.pack(message)
    let prefix = 1
    for (let rest = body.length >>> 7; rest > 0; rest >>>= 7) prefix++
    const out = Buffer.allocUnsafe(prefix + body.length)
    let at = 0
    let rest = body.length
    while (rest > 0x7f) {
      out[at++] = (rest & 0x7f) | 0x80
      rest >>>= 7
    }
    out[at++] = rest
    out.set(body, at)
    return out
  }

  /** Every message of one WebSocket frame; a frame never holds part of a message. */
  function onFrame (conn: Conn, data: Buffer, done: (err?: Error) => void): void {
    let offset = 0
    if (!conn.ready) {
      // The handshake answer is JSON ended by RS; hub messages may follow it in the same frame.
      const rs = data.indexOf(0x1e)
      const answer = data.toString('utf8', 0, rs === -1 ? data.length : rs)
      if (rs === -1 || answer !== '{}') {
        done(new Error(`connection ${conn.index}: handshake refused: ${answer}`))
        return
      }
      done()
      offset = rs + 1
    }
    while (offset < data.length) {
      let length = 0
      let shift = 0
      let byte: number
      do {
        if (offset >= data.length || shift > 28) {
          fail(`connection ${conn.index}: bad length prefix in a ${data.length}-byte frame`)
          return
        }
        byte = data[offset++]!
        length += (byte & 0x7f) * 2 ** shift
        shift += 7
      } while ((byte & 0x80) !== 0)
      const end = offset + length
      if (end > data.length) {
        fail(`connection ${conn.index}: a ${length}-byte message cut off by the end of its frame`)
        return
      }
      // BENCH_MSGPACK_DELIVERIES=skip: deliveries (the only messages holding '~') are not
      // decoded, as the JSON client skips JSON.parse for them; to tell the client's share apart.
      const tilde = LEAN_DELIVERIES ? data.indexOf(0x7e, offset) : -1
      if (tilde !== -1 && tilde < end) on.deliver(data.toString('latin1', offset, end), conn)
      else onMessage(conn, unpackr.unpack(data.subarray(offset, end)))
      offset = end
    }
  }

  function onMessage (conn: Conn, message: unknown): void {
    if (!Array.isArray(message)) {
      fail(`connection ${conn.index}: not a MessagePack array: ${JSON.stringify(message)}`)
      return
    }
    switch (message[0]) {
      case 1: { // Invocation: [1, headers, nil, target, args, streamIds]
        const args = message[4] as unknown
        if (message[3] === 'msg' && Array.isArray(args) && typeof args[0] === 'string') on.deliver(args[0], conn)
        else fail(`connection ${conn.index}: unexpected invocation: ${JSON.stringify(message)}`)
        break
      }
      case 3: // Completion: [3, headers, invocationId, kind, value?]
        if (message[2] !== String(conn.callId)) fail(`connection ${conn.index}: completion for ${String(message[2])}, expected ${conn.callId}`)
        if (message[3] === 1) fail(`connection ${conn.index}: ${String(message[4])}`)
        else if (message[3] !== 2 && message[3] !== 3) fail(`connection ${conn.index}: completion of kind ${String(message[3])}`)
        completeCall(conn, message[3] === 3 ? message[4] : undefined)
        break
      case 6:
        break
      case 7:
        fail(`connection ${conn.index}: close message: ${JSON.stringify(message)}`)
        break
      default:
        fail(`connection ${conn.index}: unexpected message: ${JSON.stringify(message)}`)
    }
  }

  function invoke (conn: Conn, target: string, args: unknown[], pending: Pending): void {
    conn.pending = pending
    conn.callId++
    conn.send(frame([1, NO_HEADERS, String(conn.callId), target, args]))
  }

  return {
    async open (conn) {
      const token = await session.negotiate(conn.port)
      let done: (err?: Error) => void = () => {}
      await openLink(conn, transport.dial(conn, token),
        () => conn.send('{"protocol":"messagepack","version":1}' + RS),
        (data) => {
          if (typeof data === 'string') fail(`connection ${conn.index}: text where MessagePack was expected: ${data}`)
          else onFrame(conn, data, done)
        },
        (d) => { done = d })
      if (transport.pings) session.track(conn)
    },
    echo (conn, payload) { invoke(conn, 'Echo', [payload], 'echo') },
    broadcast (conn, payload) { conn.send(frame([1, NO_HEADERS, null, 'Broadcast', [payload]])) },
    group (conn, group, payload) { conn.send(frame([1, NO_HEADERS, null, 'GroupSend', [group, payload]])) },
    join (conn, group) { invoke(conn, 'Join', [group], 'join') },
    stop () { session.stop() }
  }
}

/*
 * Socket.IO 4: engine.io v4 packets carrying socket.io v5 packets, one per
 * WebSocket frame, or over polling one per message of the link (which splits
 * the bodies on RS).
 */
function socketioWire (dial: (conn: Conn) => Dial): Wire {
  function onText (conn: Conn, text: string, done: (err?: Error) => void): void {
    switch (text.charCodeAt(0)) {
      case 0x34: // 4: engine.io message, a socket.io packet follows
        switch (text.charCodeAt(1)) {
          case 0x32: // 2: event
            if (text.includes('~')) on.deliver(text, conn)
            else fail(`connection ${conn.index}: unexpected event: ${text}`)
            return
          case 0x33: { // 3: ack
            const bracket = text.indexOf('[')
            const id = Number(text.slice(2, bracket))
            if (id !== conn.callId) fail(`connection ${conn.index}: ack ${id}, expected ${conn.callId}`)
            const args = JSON.parse(text.slice(bracket)) as unknown[]
            completeCall(conn, args[0])
            return
          }
          case 0x30: // 0: namespace connected
            done()
            return
          default: // 1: disconnect, 4: connect error
            if (!conn.ready) done(new Error(`connection ${conn.index}: refused: ${text}`))
            else fail(`connection ${conn.index}: ${text}`)
            return
        }
      case 0x30: // 0: engine.io open; now connect the main namespace
        conn.send('40')
        return
      case 0x32: // 2: engine.io ping
        conn.send('3')
        return
      default:
        fail(`connection ${conn.index}: unexpected packet: ${text}`)
    }
  }

  function call (conn: Conn, body: string, pending: Pending): void {
    conn.pending = pending
    conn.callId++
    conn.send(`42${conn.callId}${body}`)
  }

  return {
    async open (conn) {
      let done: (err?: Error) => void = () => {}
      await openLink(conn, dial(conn),
        () => {},
        (data) => onText(conn, data.toString(), done),
        (d) => { done = d })
    },
    echo (conn, payload) { call(conn, `["echo",${JSON.stringify(payload)}]`, 'echo') },
    broadcast (conn, payload) { conn.send(`42["broadcast",${JSON.stringify(payload)}]`) },
    group (conn, group, payload) { conn.send(`42["group",${JSON.stringify(group)},${JSON.stringify(payload)}]`) },
    join (conn, group) { call(conn, `["join",${JSON.stringify(group)}]`, 'join') },
    stop () {}
  }
}

// Raw ws: the format of bench/servers/ws.ts.
function wsWire (): Wire {
  return {
    async open (conn) {
      let done: (err?: Error) => void = () => {}
      await openLink(conn, wsLink(`ws://127.0.0.1:${conn.port}/`),
        () => done(),
        (data) => {
          const text = data.toString()
          switch (text.charCodeAt(0)) {
            case 0x65: completeCall(conn, text.slice(1)); break // e
            case 0x6a: completeCall(conn, undefined); break // j
            case 0x7e: on.deliver(text, conn); break // ~
            default: fail(`connection ${conn.index}: unexpected message: ${text}`)
          }
        },
        (d) => { done = d })
    },
    echo (conn, payload) {
      conn.pending = 'echo'
      conn.send('e' + payload)
    },
    broadcast (conn, payload) { conn.send('b' + payload) },
    group (conn, group, payload) { conn.send(`g${group} ${payload}`) },
    join (conn, group) {
      conn.pending = 'join'
      conn.send('j' + group)
    },
    stop () {}
  }
}

const WIRES: Record<ServerName, () => Wire> = {
  ws: wsWire,
  socketio: () => socketioWire((conn) => wsLink(`ws://127.0.0.1:${conn.port}/socket.io/?EIO=4&transport=websocket`)),
  'signalr-json': () => signalrJsonWire(SIGNALR_TRANSPORTS.webSockets),
  'signalr-msgpack': () => signalrMsgpackWire(SIGNALR_TRANSPORTS.webSockets),
  'socketio-polling': () => socketioWire((conn) => (events) => enginePollingLink(conn.port, events)),
  'signalr-lp-json': () => signalrJsonWire(SIGNALR_TRANSPORTS.longPolling),
  'signalr-lp-msgpack': () => signalrMsgpackWire(SIGNALR_TRANSPORTS.longPolling),
  'signalr-sse-json': () => signalrJsonWire(SIGNALR_TRANSPORTS.serverSentEvents)
}
const wire = WIRES[config.server]()

// ---------------------------------------------------------------- phases

/** Opens `count` connections, at most `connectConcurrency` handshakes at a time. */
async function connectAll (count: number): Promise<Conn[]> {
  const conns: Conn[] = []
  let next = 0
  async function worker (): Promise<void> {
    while (next < count) {
      const conn = new Conn(next++)
      conns.push(conn)
      await wire.open(conn)
    }
  }
  const workers = Math.min(config.connectConcurrency, count)
  await Promise.all(Array.from({ length: workers }, worker))
  return conns
}

/** Waits until `idle()` holds, polling; false if it did not within the timeout. */
async function settle (idle: () => boolean, timeoutMs: number): Promise<boolean> {
  const deadline = performance.now() + timeoutMs
  while (!idle()) {
    if (performance.now() > deadline) return false
    await sleep(10)
  }
  return true
}

async function joinGroups (conns: Conn[]): Promise<void> {
  let waiting = conns.length
  on.joined = () => { waiting-- }
  // Batches keep the join burst bounded; each batch completes before the next.
  for (let i = 0; i < conns.length; i += config.connectConcurrency) {
    for (const conn of conns.slice(i, i + config.connectConcurrency)) wire.join(conn, `g${conn.index % config.groups}`)
    const target = conns.length - Math.min(conns.length, i + config.connectConcurrency)
    if (!await settle(() => waiting <= target, OPEN_TIMEOUT_MS)) throw new Error(`joins not answered: ${waiting} missing`)
  }
}

function startEcho (conns: Conn[]): () => boolean {
  function call (conn: Conn): void {
    conn.sentAt = performance.now()
    wire.echo(conn, ECHO_PAYLOAD)
  }
  on.echo = (conn, result) => {
    const now = performance.now()
    if (result !== ECHO_PAYLOAD) fail(`connection ${conn.index}: echo returned ${JSON.stringify(result)}`)
    if (measuring) {
      ops++
      latency.add(now - conn.sentAt)
    }
    if (running) call(conn)
  }
  for (const conn of conns) call(conn)
  return () => conns.every((conn) => conn.pending === 'none')
}

/** Broadcast and group fan-out: one sender, a window of outstanding sends. */
function startFanOut (conns: Conn[]): () => boolean {
  const sender = conns[0]!
  const isGroup = config.scenario === 'group'
  const members = new Array<number>(isGroup ? config.groups : 0).fill(0)
  if (isGroup) for (const conn of conns) members[conn.index % config.groups]!++
  const outstanding = new Map<number, number>()
  const pad = 'x'.repeat(config.payloadBytes)
  let seq = 0

  function fire (): void {
    seq++
    const head = `~${performance.now().toFixed(3)}~${seq}~`
    const payload = head + pad.slice(0, Math.max(0, config.payloadBytes - head.length))
    if (measuring) sends++
    if (isGroup) {
      const group = Math.floor(Math.random() * config.groups)
      outstanding.set(seq, members[group]!)
      wire.group(sender, `g${group}`, payload)
    } else {
      outstanding.set(seq, conns.length)
      wire.broadcast(sender, payload)
    }
  }

  on.deliver = (text, conn) => {
    const now = performance.now()
    const a = text.indexOf('~')
    const b = text.indexOf('~', a + 1)
    const c = text.indexOf('~', b + 1)
    const sentAt = Number(text.slice(a + 1, b))
    const n = Number(text.slice(b + 1, c))
    const remaining = outstanding.get(n)
    if (remaining === undefined) {
      fail(`a delivery of send ${n}, which is not outstanding`)
      return
    }
    if (measuring) {
      ops++
      latency.add(now - sentAt)
      if (split !== null) {
        if (conn.port === sender.port) {
          split.sameOps++
          split.same.add(now - sentAt)
        } else {
          split.crossOps++
          split.cross.add(now - sentAt)
        }
      }
    }
    if (remaining > 1) {
      outstanding.set(n, remaining - 1)
    } else {
      outstanding.delete(n)
      if (running) fire()
    }
  }
  for (let i = 0; i < config.window; i++) fire()
  return () => outstanding.size === 0
}

async function main (): Promise<void> {
  const usage0 = process.cpuUsage()
  const cpu0 = cpuSeconds(config.serverPid, config.clockTicks)
  const t0 = performance.now()
  const conns = await connectAll(config.connections)
  const connectMs = performance.now() - t0
  const result: LoadResult = {
    server: config.server,
    scenario: config.scenario,
    connections: conns.length,
    connectMs,
    windowMs: connectMs,
    ops: conns.length,
    sends: 0,
    latencyMs: null,
    serverCpuSec: cpuSeconds(config.serverPid, config.clockTicks) - cpu0,
    clientCpuSec: cpuUsedSince(usage0),
    errors: 0,
    errorSamples: []
  }

  if (config.scenario !== 'storm') {
    if (config.scenario === 'group') await joinGroups(conns)
    running = true
    const idle = config.scenario === 'echo' ? startEcho(conns) : startFanOut(conns)
    await sleep(config.warmMs)

    const usage1 = process.cpuUsage()
    const split1 = cpuSplit(config.serverPid, config.clockTicks)
    const cpu1 = split1.user + split1.system
    const others1 = otherPids.map((pid) => cpuSeconds(pid, config.clockTicks))
    const t1 = performance.now()
    measuring = true
    await sleep(config.measureMs)
    measuring = false
    const t2 = performance.now()
    const split2 = cpuSplit(config.serverPid, config.clockTicks)
    const cpu2 = split2.user + split2.system
    const others2 = otherPids.map((pid) => cpuSeconds(pid, config.clockTicks))
    result.clientCpuSec = cpuUsedSince(usage1)
    result.serverCpuSec = cpu2 - cpu1
    result.serverSysSec = split2.system - split1.system
    if (otherPids.length > 0) result.otherCpuSec = others2.map((v, i) => v - others1[i]!)
    result.windowMs = t2 - t1
    running = false

    // Everything sent must come back: a lost reply or delivery is an error.
    if (!await settle(idle, DRAIN_TIMEOUT_MS)) fail(`replies or deliveries still missing ${DRAIN_TIMEOUT_MS} ms after the window`)
    result.ops = ops
    result.sends = sends
    result.latencyMs = latency.summary()
    if (split !== null) {
      result.split = { sameOps: split.sameOps, crossOps: split.crossOps, same: split.same.summary(), cross: split.cross.summary() }
    }
  }
  wire.stop()
  result.errors = errors
  result.errorSamples = errorSamples
  process.stdout.write(`RESULT ${JSON.stringify(result)}\n`)

  if (config.hold) await waitForClose()
  for (const conn of conns) {
    conn.closing = true
    conn.link.terminate()
  }
  closeHttpLinks()
}

function cpuUsedSince (before: NodeJS.CpuUsage): number {
  const used = process.cpuUsage(before)
  return (used.user + used.system) / 1e6
}

/** The driver writes `close` once it has measured the server with these connections open. */
function waitForClose (): Promise<void> {
  return new Promise((resolve) => {
    const timer = setTimeout(resolve, HOLD_TIMEOUT_MS)
    const lines = createInterface({ input: process.stdin })
    const finish = (): void => {
      clearTimeout(timer)
      lines.close()
      resolve()
    }
    lines.on('line', (line) => { if (line.trim() === 'close') finish() })
    lines.on('close', finish)
  })
}

// The driver gone (stdin closed) means nobody will read the result: stop.
if (!config.hold) {
  process.stdin.on('end', () => process.exit(1))
  process.stdin.resume()
}

main().then(
  () => process.exit(0),
  (err: unknown) => {
    process.stderr.write(`load: ${err instanceof Error ? err.stack ?? err.message : String(err)}\n`)
    process.exit(1)
  }
)
