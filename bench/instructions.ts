/**
 * Instructions per operation of the fastify-signalr server, counted by
 * valgrind's callgrind: a figure that a busy or noisy machine does not move,
 * so that CI can catch a hot path growing.
 *
 *   npm run bench:instructions                 table; exit 1 if one grew > 10 % over the baseline
 *   npm run bench:instructions -- --update     measure and rewrite bench/instructions-baseline.json
 *   --reps=N (default 5), --baseline=FILE (another baseline file)
 *   npm run bench:instructions -- --connect    connection setup only: raw ws (and two floors), the hub with skipNegotiation, the hub with negotiate
 *   npm run bench:instructions -- --http       long polling: echo and broadcast, fastify-signalr against Socket.IO polling
 *                                              (bench/instructions-http.ts; --only=signalr or --only=socketio for one of them)
 *   npm run bench:instructions -- --fanout     broadcast and group deliveries: raw ws, the hub with JSON, the hub with MessagePack
 *                                              (BENCH_FANOUT_WIRES=json,messagepack: only those; "× raw ws" is then against the first)
 *
 * The server (bench/servers/signalr-json.ts, compiled, on dist/) runs under
 * `valgrind --tool=callgrind` with instrumentation off, so start-up and the
 * warm-up run at valgrind's plain speed. Then instrumentation goes on, and each
 * measured phase is framed by `callgrind_control -z` (zero the counters) and
 * `-d` (dump them): its total is the server's instructions, all threads, for
 * exactly that phase's operations. Before each phase the server idles for
 * SETTLE_MS, so that background work (sweeping) ends outside it. The driver (this
 * process) speaks SignalR JSON over raw `ws` sockets, one operation at a time.
 * Each figure is the median over the repetitions (default 5, --reps=N).
 *
 * Operations: an echo invocation and its completion (Echo, zod included); a
 * broadcast delivery (Broadcast to BROADCAST_CONNS connections, counted per
 * message delivered, the sender's invocation included); a connection setup
 * (negotiate, WebSocket upgrade, handshake; closing is not counted).
 */
import { readFileSync, writeFileSync } from 'node:fs'
import { dirname, join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { Packr } from 'msgpackr'
import WebSocket from 'ws'
import { buildServers } from './built.js'
import { fail, int, median, pct, Server } from './callgrind.js'
import { httpComparison } from './instructions-http.js'

const benchDir = dirname(fileURLToPath(import.meta.url))
let baselinePath = join(benchDir, 'instructions-baseline.json')

const RS = '\u001e'
const ECHO_PAYLOAD = 'the quick brown fox jumps over the lazy dog'
const BROADCAST_CONNS = 50
/** Allowed growth over the baseline before the check fails. */
const TOLERANCE = 0.10

type Op = 'echo' | 'broadcast' | 'connect'
const OPS: Op[] = ['echo', 'broadcast', 'connect']
const LABEL: Record<Op, string> = {
  echo: 'echo invocation (round trip)',
  broadcast: `broadcast delivery (${BROADCAST_CONNS} conns)`,
  connect: 'connection setup (negotiate + ws + handshake)'
}
/** Operations per measured phase, and per warm-up (uncounted). */
const MEASURE: Record<Op, number> = { echo: 300, broadcast: 20, connect: 30 }
const WARM: Record<Op, number> = { echo: 2000, broadcast: 100, connect: 100 }

interface Baseline {
  node: string
  recorded: string
  instructionsPerOp: Record<Op, number>
}

// ---------------------------------------------------------------- the client side

/** One SignalR JSON connection; records arrive on `onRecord`. */
class Conn {
  private closing = false

  private constructor (readonly ws: WebSocket, public onRecord: (record: string) => void) {
    // A connection the server drops would leave a phase waiting for ever.
    ws.on('close', (code: number, reason: Buffer) => { if (!this.closing) fail(new Error(`the server closed a connection (${code} ${reason.toString()}) at ${new Date().toISOString()}`)) })
  }

  /** `negotiate: false`: skipNegotiation, straight to the WebSocket. */
  static async open (port: number, negotiate = true): Promise<Conn> {
    let query = ''
    if (negotiate) {
      const res = await fetch(`http://127.0.0.1:${port}/hub/negotiate?negotiateVersion=1`, { method: 'POST' })
      if (res.status !== 200) throw new Error(`negotiate: HTTP ${res.status}`)
      const { connectionToken } = await res.json() as { connectionToken: string }
      query = `?id=${encodeURIComponent(connectionToken)}`
    }
    const ws = new WebSocket(`ws://127.0.0.1:${port}/hub${query}`, { perMessageDeflate: false })
    const conn = new Conn(ws, () => {})
    ws.on('message', (data) => {
      for (const record of data.toString().split(RS)) if (record !== '') conn.onRecord(record)
    })
    await new Promise<void>((resolve, reject) => {
      ws.once('error', reject)
      ws.once('open', () => ws.send(`{"protocol":"json","version":1}${RS}`))
      conn.onRecord = (record) => (record === '{}' ? resolve() : reject(new Error(`handshake refused: ${record}`)))
    })
    return conn
  }

  /** Resolves when `count` records have arrived. */
  expect (count: number): Promise<void> {
    return new Promise((resolve) => {
      let seen = 0
      this.onRecord = (record) => {
        if (record === '{"type":6}') return
        if (++seen === count) resolve()
      }
    })
  }

  /** Keeps the server's client timeout (30 s of silence) away; sent outside the measured phases. */
  ping (): void {
    this.ws.send(`{"type":6}${RS}`)
  }

  async close (): Promise<void> {
    this.closing = true
    await new Promise<void>((resolve) => {
      this.ws.once('close', () => resolve())
      this.ws.close()
    })
  }
}

async function echoes (conn: Conn, n: number): Promise<void> {
  for (let i = 1; i <= n; i++) {
    const done = conn.expect(1)
    conn.ws.send(`{"type":1,"invocationId":"${i}","target":"Echo","arguments":[${JSON.stringify(ECHO_PAYLOAD)}]}${RS}`)
    await done
  }
}

/** `n` broadcasts from conns[0], each awaited until every connection has it; returns the deliveries. */
async function broadcasts (conns: Conn[], n: number): Promise<number> {
  for (let i = 0; i < n; i++) {
    const all = Promise.all(conns.map((c) => c.expect(1)))
    conns[0]!.ws.send(`{"type":1,"target":"Broadcast","arguments":[${JSON.stringify(ECHO_PAYLOAD)}]}${RS}`)
    await all
  }
  return n * conns.length
}

async function connects (port: number, n: number, negotiate = true): Promise<Conn[]> {
  const conns: Conn[] = []
  for (let i = 0; i < n; i++) conns.push(await Conn.open(port, negotiate))
  return conns
}

/** `n` connections to the raw ws server (bench/servers/ws.ts), one after the other; closed again after. */
async function rawConnects (port: number, n: number): Promise<WebSocket[]> {
  const sockets: WebSocket[] = []
  for (let i = 0; i < n; i++) {
    const ws = new WebSocket(`ws://127.0.0.1:${port}/`, { perMessageDeflate: false })
    await new Promise<void>((resolve, reject) => {
      ws.once('open', resolve)
      ws.once('error', reject)
    })
    sockets.push(ws)
  }
  return sockets
}

/**
 * `n` connections to the raw ws server, each then sending one message that
 * comes back (its echo operation): a raw upgrade plus one message each way,
 * what the SignalR handshake costs any WebSocket server at the least.
 */
async function rawConnectsWithOneMessage (port: number, n: number): Promise<WebSocket[]> {
  const sockets: WebSocket[] = []
  for (let i = 0; i < n; i++) {
    const [ws] = await rawConnects(port, 1)
    await new Promise<void>((resolve) => {
      ws!.once('message', () => resolve())
      ws!.send(`e{"protocol":"json","version":1}${RS}`)
    })
    sockets.push(ws!)
  }
  return sockets
}

async function closeRaw (sockets: WebSocket[]): Promise<void> {
  for (const ws of sockets) {
    const closed = new Promise((resolve) => ws.once('close', resolve))
    ws.close()
    await closed
  }
}

// ---------------------------------------------------------------- the run

/** Instructions per operation, one figure per repetition of each phase. */
async function measure (reps: number): Promise<Record<Op, number[]>> {
  const server = Server.start()
  try {
    const port = Number((await server.line(/^READY (\d+)$/, 300_000))[1])
    const conns = await connects(port, BROADCAST_CONNS)
    // Warm-up, uninstrumented: V8 tiers the hot paths up before anything is counted.
    await echoes(conns[0]!, WARM.echo)
    for (const c of conns) c.ping()
    await broadcasts(conns, WARM.broadcast)
    for (const c of conns) c.ping()
    for (const c of await connects(port, WARM.connect)) await c.close()
    for (const c of conns) c.ping()
    await server.control('-i', 'on')

    const perOp: Record<Op, number[]> = { echo: [], broadcast: [], connect: [] }
    for (let rep = 0; rep < reps; rep++) {
      for (const c of conns) c.ping()
      await server.startPhase()
      await echoes(conns[0]!, MEASURE.echo)
      perOp.echo.push(await server.endPhase() / MEASURE.echo)

      for (const c of conns) c.ping()
      await server.startPhase()
      const deliveries = await broadcasts(conns, MEASURE.broadcast)
      perOp.broadcast.push(await server.endPhase() / deliveries)

      for (const c of conns) c.ping()
      await server.startPhase()
      const fresh = await connects(port, MEASURE.connect)
      perOp.connect.push(await server.endPhase() / MEASURE.connect)
      for (const c of fresh) await c.close()
    }
    for (const c of conns) await c.close()
    return perOp
  } finally {
    await server.stop()
  }
}

const RAW = 'raw ws (upgrade)'
const RAW_MESSAGE = 'raw ws, upgrade + one message each way'
const FASTIFY_WS = 'Fastify + @fastify/websocket, upgrade + handshake answer'
const HUB_SKIP = 'hub, skipNegotiation (upgrade + handshake)'
const HUB_NEGOTIATE = 'hub, negotiate + upgrade + handshake'

/** Opens `n` connections one after the other; answers what closes them again. */
type Opener = (port: number, n: number) => Promise<() => Promise<void>>

const rawOpener = (open: (port: number, n: number) => Promise<WebSocket[]>): Opener => async (port, n) => {
  const sockets = await open(port, n)
  return () => closeRaw(sockets)
}

const clientOpener = (negotiate: boolean): Opener => async (port, n) => {
  const conns = await connects(port, n, negotiate)
  return async () => { for (const c of conns) await c.close() }
}

/** Starts `script` under callgrind, warms every phase up, then measures each `reps` times into `out`. */
async function measureSetups (script: string, phases: Array<[label: string, open: Opener]>, reps: number, out: Record<string, number[]>): Promise<void> {
  const server = Server.start(script)
  try {
    const port = Number((await server.line(/^READY (\d+)$/, 300_000))[1])
    for (const [, open] of phases) await (await open(port, WARM.connect))()
    await server.control('-i', 'on')
    for (let rep = 0; rep < reps; rep++) {
      for (const [label, open] of phases) {
        await server.startPhase()
        const close = await open(port, MEASURE.connect)
        out[label]!.push(await server.endPhase() / MEASURE.connect)
        await close()
      }
    }
  } finally {
    await server.stop()
  }
}

/**
 * --connect: instructions per connection setup, raw ws against the hub without
 * and with negotiate; with two floors for the hub's upgrade + handshake: raw
 * ws exchanging one message, and a bare @fastify/websocket route answering the
 * handshake (bench/servers/fastify-ws.ts).
 */
async function measureConnects (reps: number): Promise<Record<string, number[]>> {
  const out: Record<string, number[]> = { [RAW]: [], [RAW_MESSAGE]: [], [FASTIFY_WS]: [], [HUB_SKIP]: [], [HUB_NEGOTIATE]: [] }
  await measureSetups('ws', [[RAW, rawOpener(rawConnects)], [RAW_MESSAGE, rawOpener(rawConnectsWithOneMessage)]], reps, out)
  await measureSetups('fastify-ws', [[FASTIFY_WS, clientOpener(false)]], reps, out)
  await measureSetups('signalr-json', [[HUB_SKIP, clientOpener(false)], [HUB_NEGOTIATE, clientOpener(true)]], reps, out)
  return out
}

// ---------------------------------------------------------------- --fanout

/**
 * One delivery-counting connection of the --fanout comparison, for one wire:
 * raw ws (one frame, one message), SignalR JSON (records ended by 0x1e) or
 * SignalR MessagePack (varint-length-prefixed records). Pings are not counted.
 */
type FanWire = 'ws' | 'json' | 'messagepack'
const FAN_SERVER: Record<FanWire, string> = { ws: 'ws', json: 'signalr-json', messagepack: 'signalr-msgpack' }
const FAN_LABEL: Record<FanWire, string> = { ws: 'raw ws', json: 'hub, JSON', messagepack: 'hub, MessagePack' }
const FAN_GROUPS = 5
const packr = new Packr({ useRecords: false, variableMapSize: true })
const JOIN_COMPLETION = Buffer.from([0x03, 0x80, 0xa1, 0x6a])

/** A MessagePack record: varint length, then the array. */
function msgpackRecord (message: unknown[]): Buffer {
  const body = Buffer.from(packr.pack(message))
  const prefix: number[] = []
  let rest = body.length
  while (rest > 0x7f) {
    prefix.push((rest & 0x7f) | 0x80)
    rest >>>= 7
  }
  prefix.push(rest)
  return Buffer.concat([Buffer.from(prefix), body])
}

/** The target name of every delivery, as MessagePack writes it (fixstr of 3 bytes, "msg"). */
const MSG_TARGET = Buffer.from([0xa3, 0x6d, 0x73, 0x67])

/** The messages in one frame that are deliveries (not pings, completions or the handshake answer). */
function deliveriesIn (wire: FanWire, data: Buffer): number {
  if (wire === 'ws') return data.toString() === 'j' ? 0 : 1
  if (wire === 'json') return data.toString().split(RS).filter((r) => r !== '' && r !== '{"type":6}' && r !== '{}' && !r.includes('"type":3')).length
  let n = 0
  for (let at = data.indexOf(MSG_TARGET); at !== -1; at = data.indexOf(MSG_TARGET, at + MSG_TARGET.length)) n++
  return n
}

class FanConn {
  private waiting = 0
  private resolve: (() => void) | null = null

  private constructor (readonly wire: FanWire, readonly ws: WebSocket) {
    ws.on('close', () => fail(new Error(`the server closed a --fanout connection at ${new Date().toISOString()}`)))
  }

  static async open (wire: FanWire, port: number): Promise<FanConn> {
    const ws = new WebSocket(`ws://127.0.0.1:${port}/hub`, { perMessageDeflate: false })
    await new Promise<void>((resolve, reject) => {
      ws.once('error', reject)
      ws.once('open', () => {
        if (wire === 'ws') resolve()
        else ws.send(`{"protocol":"${wire}","version":1}${RS}`)
      })
      if (wire !== 'ws') {
        ws.once('message', (data: Buffer) => (data.toString().startsWith('{}') ? resolve() : reject(new Error(`handshake refused: ${data.toString()}`))))
      }
    })
    const conn = new FanConn(wire, ws)
    ws.on('message', (data: Buffer) => conn.onFrame(data))
    return conn
  }

  private onFrame (data: Buffer): void {
    this.waiting -= deliveriesIn(this.wire, data)
    if (this.waiting <= 0 && this.resolve !== null) {
      const resolve = this.resolve
      this.resolve = null
      resolve()
    }
  }

  expect (count: number): Promise<void> {
    this.waiting += count
    return new Promise((resolve) => { this.resolve = resolve })
  }

  /** A message the server answers without a delivery (join, ping). */
  send (data: string | Buffer): void {
    this.ws.send(data)
  }

  broadcast (payload: string): void {
    if (this.wire === 'ws') this.ws.send('b' + payload)
    else if (this.wire === 'json') this.ws.send(`{"type":1,"target":"Broadcast","arguments":[${JSON.stringify(payload)}]}${RS}`)
    else this.ws.send(msgpackRecord([1, {}, null, 'Broadcast', [payload]]))
  }

  groupSend (group: string, payload: string): void {
    if (this.wire === 'ws') this.ws.send(`g${group} ${payload}`)
    else if (this.wire === 'json') this.ws.send(`{"type":1,"target":"GroupSend","arguments":[${JSON.stringify(group)},${JSON.stringify(payload)}]}${RS}`)
    else this.ws.send(msgpackRecord([1, {}, null, 'GroupSend', [group, payload]]))
  }

  /** Joins `group` and waits for the answer. */
  async join (group: string): Promise<void> {
    const answered = new Promise<void>((resolve) => {
      const onMessage = (data: Buffer): void => {
        // The join's invocation id is "j"; in MessagePack its Completion starts [3, {}, "j", …].
        const answer = this.wire === 'ws'
          ? data.toString() === 'j'
          : this.wire === 'json' ? data.toString().includes('"invocationId":"j"') : data.includes(JOIN_COMPLETION)
        if (answer) {
          this.ws.off('message', onMessage)
          resolve()
        }
      }
      this.ws.on('message', onMessage)
    })
    if (this.wire === 'ws') this.ws.send('j' + group)
    else if (this.wire === 'json') this.ws.send(`{"type":1,"invocationId":"j","target":"Join","arguments":[${JSON.stringify(group)}]}${RS}`)
    else this.ws.send(msgpackRecord([1, {}, 'j', 'Join', [group]]))
    await answered
  }

  ping (): void {
    if (this.wire === 'json') this.ws.send(`{"type":6}${RS}`)
    else if (this.wire === 'messagepack') this.ws.send(Buffer.from([0x02, 0x91, 0x06]))
  }

  async close (): Promise<void> {
    this.ws.removeAllListeners('close')
    await new Promise<void>((resolve) => {
      this.ws.once('close', () => resolve())
      this.ws.close()
    })
  }
}

/** `n` broadcasts from conns[0], each awaited until every connection has it; returns the deliveries. */
async function fanBroadcasts (conns: FanConn[], n: number): Promise<number> {
  for (let i = 0; i < n; i++) {
    const all = Promise.all(conns.map((c) => c.expect(1)))
    conns[0]!.broadcast(ECHO_PAYLOAD)
    await all
  }
  return n * conns.length
}

/** `n` group sends from conns[0], to the groups in turn; returns the deliveries. */
async function fanGroupSends (conns: FanConn[], n: number): Promise<number> {
  let deliveries = 0
  for (let i = 0; i < n; i++) {
    const group = i % FAN_GROUPS
    const members = conns.filter((_c, index) => index % FAN_GROUPS === group)
    const all = Promise.all(members.map((c) => c.expect(1)))
    conns[0]!.groupSend(`g${group}`, ECHO_PAYLOAD)
    await all
    deliveries += members.length
  }
  return deliveries
}

/** --fanout: instructions per broadcast delivery and per group delivery, raw ws against both hub protocols. */
async function measureFanout (wire: FanWire, reps: number): Promise<{ broadcast: number[], group: number[] }> {
  const out = { broadcast: [] as number[], group: [] as number[] }
  const server = Server.start(FAN_SERVER[wire])
  try {
    const port = Number((await server.line(/^READY (\d+)$/, 300_000))[1])
    const conns: FanConn[] = []
    for (let i = 0; i < BROADCAST_CONNS; i++) conns.push(await FanConn.open(wire, port))
    for (let i = 0; i < conns.length; i++) await conns[i]!.join(`g${i % FAN_GROUPS}`)
    await fanBroadcasts(conns, WARM.broadcast)
    await fanGroupSends(conns, WARM.broadcast * 2)
    await server.control('-i', 'on')
    /** Instructions per delivery of one counted phase (the clients ping first: no timeout inside it). */
    const counted = async (deliver: () => Promise<number>): Promise<number> => {
      for (const c of conns) c.ping()
      await server.startPhase()
      const deliveries = await deliver()
      return await server.endPhase() / deliveries
    }
    for (let rep = 0; rep < reps; rep++) {
      out.broadcast.push(await counted(() => fanBroadcasts(conns, MEASURE.broadcast)))
      out.group.push(await counted(() => fanGroupSends(conns, MEASURE.broadcast * 5)))
    }
    for (const c of conns) await c.close()
  } finally {
    await server.stop()
  }
  return out
}

async function fanoutComparison (reps: number): Promise<number> {
  buildServers()
  const rows = [
    `| server | broadcast delivery (${BROADCAST_CONNS} conns) | spread | × raw ws | group delivery (${BROADCAST_CONNS} conns, ${FAN_GROUPS} groups) | spread | × raw ws |`,
    '| --- | ---: | ---: | ---: | ---: | ---: | ---: |'
  ]
  let floor: { broadcast: number, group: number } | null = null
  const only = process.env.BENCH_FANOUT_WIRES?.split(',')
  for (const wire of ['ws', 'json', 'messagepack'] as const) {
    if (only !== undefined && !only.includes(wire)) continue
    const got = await measureFanout(wire, reps)
    const b = median(got.broadcast)
    const g = median(got.group)
    floor ??= { broadcast: b, group: g }
    const spread = (values: number[], m: number): string => `${((Math.max(...values) - Math.min(...values)) / m * 100).toFixed(1)} %`
    rows.push(`| ${FAN_LABEL[wire]} | ${int(b)} | ${spread(got.broadcast, b)} | ${(b / floor.broadcast).toFixed(2)} | ${int(g)} | ${spread(got.group, g)} | ${(g / floor.group).toFixed(2)} |`)
    process.stderr.write(`${rows.at(-1)!}\n`)
  }
  process.stdout.write(`${rows.join('\n')}\n\n${reps} repetitions; node ${process.version}; each figure counts the sender's invocation, shared by its receivers\n`)
  return 0
}

async function connectComparison (reps: number): Promise<number> {
  buildServers()
  const perSetup = await measureConnects(reps)
  const floor = median(perSetup[RAW]!)
  const rows = ['| connection setup | instructions (median) | spread over reps | × raw ws |', '| --- | ---: | ---: | ---: |']
  for (const [label, values] of Object.entries(perSetup)) {
    const m = median(values)
    rows.push(`| ${label} | ${int(m)} | ${((Math.max(...values) - Math.min(...values)) / m * 100).toFixed(1)} % | ${(m / floor).toFixed(2)} |`)
  }
  process.stdout.write(`${rows.join('\n')}\n\n${reps} repetitions; node ${process.version}\n`)
  return 0
}

function readBaseline (): Baseline | null {
  try {
    return JSON.parse(readFileSync(baselinePath, 'utf8')) as Baseline
  } catch {
    return null
  }
}

async function main (): Promise<number> {
  const args = process.argv.slice(2)
  const update = args.includes('--update')
  const repsArg = args.find((a) => a.startsWith('--reps='))
  const reps = repsArg === undefined ? 5 : Number(repsArg.slice(7))
  const baselineArg = args.find((a) => a.startsWith('--baseline='))
  if (baselineArg !== undefined) baselinePath = baselineArg.slice(11)
  const onlyArg = args.find((a) => a.startsWith('--only='))
  for (const a of args) {
    if (a !== '--update' && a !== '--connect' && a !== '--http' && a !== '--fanout' && a !== repsArg && a !== baselineArg && a !== onlyArg) {
      throw new Error(`unknown argument ${a} (known: --update, --connect, --http, --fanout, --only=signalr|socketio, --reps=N, --baseline=FILE)`)
    }
  }
  if (!(Number.isInteger(reps) && reps >= 1 && reps <= 20)) throw new Error('--reps must be 1..20')
  if (args.includes('--connect')) return await connectComparison(reps)
  if (args.includes('--fanout')) return await fanoutComparison(reps)
  if (args.includes('--http')) return await httpComparison(reps, onlyArg?.slice(7))

  buildServers()
  const started = Date.now()
  const perOp = await measure(reps)
  const seconds = (Date.now() - started) / 1000
  const now: Record<Op, number> = { echo: median(perOp.echo), broadcast: median(perOp.broadcast), connect: median(perOp.connect) }
  const baseline = readBaseline()
  const comparable = baseline !== null && baseline.node === process.version

  const rows = ['| operation | instructions/op (median) | spread over reps | baseline | change |', '| --- | ---: | ---: | ---: | ---: |']
  let grew = false
  for (const op of OPS) {
    const spread = (Math.max(...perOp[op]) - Math.min(...perOp[op])) / now[op]
    const base = baseline?.instructionsPerOp[op]
    const change = comparable && base !== undefined ? now[op] / base - 1 : null
    if (change !== null && change > TOLERANCE) grew = true
    rows.push(`| ${LABEL[op]} | ${int(now[op])} | ${(spread * 100).toFixed(1)} % | ${base === undefined ? '—' : int(base)} | ` +
      `${change === null ? '—' : pct(change)}${change !== null && change > TOLERANCE ? ' ✗' : ''} |`)
  }
  process.stdout.write(`${rows.join('\n')}\n\n${reps} repetitions, ${seconds.toFixed(0)} s under callgrind; node ${process.version}\n`)

  if (update) {
    const next: Baseline = { node: process.version, recorded: new Date().toISOString(), instructionsPerOp: { echo: Math.round(now.echo), broadcast: Math.round(now.broadcast), connect: Math.round(now.connect) } }
    writeFileSync(baselinePath, JSON.stringify(next, null, 2) + '\n')
    process.stdout.write(`wrote ${baselinePath}\n`)
    return 0
  }
  if (baseline === null) {
    process.stdout.write('no baseline yet: npm run bench:instructions -- --update\n')
    return 1
  }
  if (!comparable) {
    // Node versions differ in what V8 runs for the same JavaScript: no verdict.
    process.stdout.write(`baseline recorded on node ${baseline.node}, this is ${process.version}: not compared\n`)
    return 0
  }
  if (grew) {
    process.stdout.write(`an operation costs more than ${TOLERANCE * 100} % over the baseline (if on purpose: npm run bench:instructions -- --update)\n`)
    return 1
  }
  process.stdout.write(`every operation within ${TOLERANCE * 100} % of the baseline\n`)
  return 0
}

main().then(
  (code) => process.exit(code),
  (err: unknown) => {
    process.stderr.write(`bench:instructions: ${err instanceof Error ? err.message : String(err)}\n`)
    process.exit(1)
  }
)
