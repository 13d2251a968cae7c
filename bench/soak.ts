/**
 * Soak run (issue 9): hundreds of official @microsoft/signalr clients over
 * every transport and protocol, with churn (connections leaving and joining),
 * groups and broadcasts, against a server in a process of its own
 * (bench/servers/soak-server.ts). It counts, per receiver and only for the
 * time that receiver was connected, every message lost or duplicated, and
 * fits a line through the server's heapUsed after full GCs.
 *
 *   npm run soak                          5 minutes, 300 connections
 *   npm run soak -- --duration 120        another length, in seconds
 *   npm run soak -- --ci                  CI size: 45 s, 100 connections
 *   --connections N                       another number of connections
 *   --max-heap-slope KB                   another bound on the heap slope (KB/min)
 *
 * It exits non-zero when a message was lost or duplicated, a connection
 * closed with an error, an invocation failed, or the heap slope exceeds the
 * bound (HEAP_SLOPE_BOUND below says why it is what it is; runs shorter than
 * 2 minutes get a looser one, and samples spanning less than 20 s none).
 * It prints a summary in Markdown (the "Soak" section of bench/RESULTS.md
 * quotes one) and writes the raw figures to bench/results/.
 *
 * How "lost" is decided without a shared clock: every event of the driver
 * (a client connected, a send issued, a send completed, a fence issued) takes
 * the next value of one counter. A receiver R must have a broadcast when it
 * was issued after R connected and completed before R's fence was issued:
 * the server then queued it for R before it handled R's `Fence`, whose
 * completion R awaits before it leaves (messages to one connection keep
 * their order). Group sends count from the moment R's Join completed.
 * Duplicates are counted for every message a receiver got, in any window.
 */
import { spawn, type ChildProcess } from 'node:child_process'
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs'
import { loadavg } from 'node:os'
import { dirname, join } from 'node:path'
import { createInterface } from 'node:readline'
import { fileURLToPath } from 'node:url'
import * as signalR from '@microsoft/signalr'
import { buildServers, serverScript } from './built.js'
import { MessagePackHubProtocol } from '@microsoft/signalr-protocol-msgpack'

const benchDir = dirname(fileURLToPath(import.meta.url))
const rootDir = dirname(benchDir)

// ---------------------------------------------------------------- settings

interface Settings {
  durationSec: number
  connections: number
  /** Broadcasts issued per second (each reaches every connection). */
  broadcastsPerSec: number
  /** Group sends issued per second, to the sender's own group. */
  groupSendsPerSec: number
  groups: number
  /** Connections that leave (and are replaced) per second. */
  churnPerSec: number
  /** Heap samples: how often, and from when on they count for the slope. */
  heapSampleSec: number
  warmUpSec: number
  maxHeapSlopeKBPerMin: number
}

/**
 * The bound on the server's heap slope, KB per minute. With a steady number
 * of connections a leak shows as growth per churned connection: at the
 * default churn (3 a second, 180 a minute) a leak of 2 KB per connection
 * gives about 360 KB/min and fails, while a steady server stays well below
 * (measured: about 150 KB/min over 3 minutes, most of it the first minute's
 * warm-up; closed long-polling connections are kept a few seconds before they
 * go, so the heap swings by a few hundred KB either way). A run shorter than
 * LONG_RUN_SEC (the CI run) has a short warm-up and a noisy fit: its bound
 * only catches a gross leak (about 10 KB per replaced connection).
 */
const HEAP_SLOPE_BOUND = 256
const HEAP_SLOPE_BOUND_SHORT = 2048
const LONG_RUN_SEC = 120
/** The shortest span of samples the slope is judged on. */
const MIN_FIT_SEC = 20

const DEFAULT: Settings = {
  durationSec: 300,
  connections: 300,
  broadcastsPerSec: 5,
  groupSendsPerSec: 20,
  groups: 10,
  churnPerSec: 3,
  // These three follow from the duration (parseCli).
  heapSampleSec: 10,
  warmUpSec: 60,
  maxHeapSlopeKBPerMin: HEAP_SLOPE_BOUND
}
const CI: Settings = { ...DEFAULT, durationSec: 45, connections: 100, groups: 5 }

/** Invocations in flight at most; a tick that would exceed it is skipped (and counted), so a slow machine slows the run down instead of piling up. */
const MAX_IN_FLIGHT = 100
const START_CONCURRENCY = 20
/** Bounds on waits, so that a stuck server fails the run instead of hanging it. */
const SERVER_START_MS = 60_000
const INVOKE_TIMEOUT_MS = 30_000

function parseCli (argv: string[]): { settings: Settings, ci: boolean } {
  const args = argv.flatMap((arg) => arg.startsWith('--') && arg.includes('=') ? arg.split('=', 2) : [arg])
  const ci = args.includes('--ci')
  const settings = { ...(ci ? CI : DEFAULT) }
  let maxHeapSlope: number | null = null
  for (let i = 0; i < args.length; i++) {
    const arg = args[i]!
    if (arg === '--ci') continue
    const value = Number(args[++i])
    if (!Number.isFinite(value) || value <= 0) throw new Error(`${arg} needs a positive number`)
    if (arg === '--duration') settings.durationSec = value
    else if (arg === '--connections') settings.connections = Math.round(value)
    else if (arg === '--max-heap-slope') maxHeapSlope = value
    else throw new Error(`unknown argument ${arg} (known: --duration S, --connections N, --max-heap-slope KB, --ci)`)
  }
  const long = settings.durationSec >= LONG_RUN_SEC
  settings.heapSampleSec = long ? 10 : 3
  // A short run keeps half its time for samples to fit.
  settings.warmUpSec = long ? 60 : Math.min(20, settings.durationSec / 2)
  settings.maxHeapSlopeKBPerMin = maxHeapSlope ?? (long ? HEAP_SLOPE_BOUND : HEAP_SLOPE_BOUND_SHORT)
  return { settings, ci }
}

// ---------------------------------------------------------------- server

interface Server {
  child: ChildProcess
  baseUrl: string
}

let serverChild: ChildProcess | null = null
process.on('exit', () => { serverChild?.kill('SIGKILL') })
for (const signal of ['SIGINT', 'SIGTERM', 'SIGHUP'] as const) process.once(signal, () => process.exit(130))

async function startServer (): Promise<Server> {
  // stdin stays open as a lifeline: the server exits when it ends (bench/servers/common.ts).
  buildServers()
  const child = spawn(process.execPath, ['--expose-gc', serverScript('soak-server'), '0'], {
    cwd: rootDir, stdio: ['pipe', 'pipe', 'pipe']
  })
  serverChild = child
  let stderr = ''
  child.stderr!.setEncoding('utf8').on('data', (chunk: string) => { stderr = (stderr + chunk).slice(-3000) })
  const port = await new Promise<number>((resolve, reject) => {
    const timer = setTimeout(() => { reject(new Error(`the soak server printed no READY within ${SERVER_START_MS} ms: ${stderr}`)) }, SERVER_START_MS)
    createInterface({ input: child.stdout! }).on('line', (line) => {
      const match = /^READY (\d+)$/.exec(line)
      if (match === null) return
      clearTimeout(timer)
      resolve(Number(match[1]))
    })
    child.once('exit', (code, signal) => {
      clearTimeout(timer)
      reject(new Error(`the soak server exited (${code ?? signal}): ${stderr}`))
    })
  })
  return { child, baseUrl: `http://127.0.0.1:${port}` }
}

async function heapUsedKB (server: Server): Promise<number> {
  const res = await fetch(`${server.baseUrl}/soak/heap`)
  if (!res.ok) throw new Error(`GET /soak/heap answered ${res.status}`)
  const { heapUsed } = await res.json() as { heapUsed: number }
  return heapUsed / 1024
}

// ---------------------------------------------------------------- clients

interface Cell { transport: 'WebSockets' | 'ServerSentEvents' | 'LongPolling', protocol: 'json' | 'messagepack' }
const CELLS: readonly Cell[] = [
  { transport: 'WebSockets', protocol: 'json' },
  { transport: 'WebSockets', protocol: 'messagepack' },
  { transport: 'ServerSentEvents', protocol: 'json' },
  { transport: 'LongPolling', protocol: 'json' },
  { transport: 'LongPolling', protocol: 'messagepack' }
]
const cellName = (cell: Cell): string => `${cell.transport}/${cell.protocol}`

/** One counter orders every event of the driver (see the top of the file). */
let clock = 0
const tick = (): number => ++clock

interface SendRecord {
  key: string
  issuedAt: number
  completedAt: number | null
}

interface Client {
  name: string
  cell: Cell
  group: string
  connection: signalR.HubConnection
  state: 'starting' | 'ready' | 'leaving' | 'gone'
  connectedAt: number
  joinedAt: number
  /** Sequence number of this client's last send. */
  seq: number
  /** How often each message ('b|sender|seq' or 'g|group|sender|seq') arrived. */
  received: Map<string, number>
  pending: Set<Promise<unknown>>
}

const totals = {
  connectionsOpened: 0,
  connectionsClosed: 0,
  sent: 0,
  received: 0,
  expected: 0,
  lost: 0,
  duplicated: 0,
  skippedTicks: 0,
  failures: [] as string[]
}
/** Per cell: the same counts for its receivers, so a loss names its transport and protocol. */
const perCell = new Map<string, { expected: number, lost: number, duplicated: number, received: number }>(
  CELLS.map((cell) => [cellName(cell), { expected: 0, lost: 0, duplicated: 0, received: 0 }]))
const broadcasts: SendRecord[] = []
const groupSends = new Map<string, SendRecord[]>()
const clients = new Set<Client>()
let inFlight = 0
let nextClient = 0
/** While a heap sample is taken, no send and no churn starts. */
let paused = false

function fail (what: string): void {
  if (totals.failures.length < 50) totals.failures.push(what)
  else if (totals.failures.length === 50) totals.failures.push('… (more failures left out)')
}

function withTimeout<T> (what: string, promise: Promise<T>): Promise<T> {
  let timer: NodeJS.Timeout | undefined
  const timeout = new Promise<never>((_resolve, reject) => {
    timer = setTimeout(() => { reject(new Error(`${what}: no answer within ${INVOKE_TIMEOUT_MS} ms`)) }, INVOKE_TIMEOUT_MS)
  })
  return Promise.race([promise, timeout]).finally(() => { clearTimeout(timer) })
}

function receive (client: Client, key: string): void {
  totals.received++
  perCell.get(cellName(client.cell))!.received++
  client.received.set(key, (client.received.get(key) ?? 0) + 1)
}

async function enter (hubUrl: string, settings: Settings): Promise<void> {
  const n = nextClient++
  const cell = CELLS[n % CELLS.length]!
  let builder = new signalR.HubConnectionBuilder()
    .withUrl(hubUrl, { transport: signalR.HttpTransportType[cell.transport] })
    .configureLogging(signalR.LogLevel.None)
  if (cell.protocol === 'messagepack') builder = builder.withHubProtocol(new MessagePackHubProtocol())
  const client: Client = {
    name: `c${n}`,
    cell,
    group: `g${n % settings.groups}`,
    connection: builder.build(),
    state: 'starting',
    connectedAt: Infinity,
    joinedAt: Infinity,
    seq: 0,
    received: new Map(),
    pending: new Set()
  }
  client.connection.on('b', (sender: string, seq: number) => { receive(client, `b|${sender}|${seq}`) })
  client.connection.on('g', (group: string, sender: string, seq: number) => { receive(client, `g|${group}|${sender}|${seq}`) })
  client.connection.onclose((error) => {
    if (client.state !== 'leaving') fail(`${client.name} (${cellName(cell)}) closed unexpectedly${error === undefined ? '' : `: ${error.message}`}`)
    else if (error !== undefined) fail(`${client.name} (${cellName(cell)}): stop() ended with an error: ${error.message}`)
    client.state = 'gone'
    clients.delete(client)
  })
  clients.add(client)
  try {
    await withTimeout(`${client.name} start`, client.connection.start())
    totals.connectionsOpened++
    client.connectedAt = tick()
    await withTimeout(`${client.name} Join`, client.connection.invoke('Join', client.group))
    client.joinedAt = tick()
    if (client.state === 'starting') client.state = 'ready'
  } catch (err) {
    if (client.state !== 'gone') fail(`${client.name} (${cellName(cell)}) could not connect: ${(err as Error).message}`)
    clients.delete(client)
    client.state = 'gone'
    await client.connection.stop().catch(() => {})
  }
}

/** Checks what `client` got against what it must have got, up to its fence. */
function account (client: Client, fenceAt: number): void {
  const cell = perCell.get(cellName(client.cell))!
  const check = (records: readonly SendRecord[], from: number): void => {
    for (const record of records) {
      if (record.issuedAt <= from || record.completedAt === null || record.completedAt >= fenceAt) continue
      totals.expected++
      cell.expected++
      if (!client.received.has(record.key)) {
        totals.lost++
        cell.lost++
      }
    }
  }
  check(broadcasts, client.connectedAt)
  check(groupSends.get(client.group) ?? [], client.joinedAt)
  for (const count of client.received.values()) {
    if (count > 1) {
      totals.duplicated += count - 1
      cell.duplicated += count - 1
    }
  }
}

async function leave (client: Client): Promise<void> {
  if (client.state !== 'ready') return
  client.state = 'leaving'
  // Its own sends first: stop() would cancel them.
  await Promise.allSettled(client.pending)
  try {
    const fenceAt = tick()
    await withTimeout(`${client.name} Fence`, client.connection.invoke('Fence'))
    account(client, fenceAt)
  } catch (err) {
    fail(`${client.name} (${cellName(client.cell)}) Fence failed: ${(err as Error).message}`)
  }
  await client.connection.stop()
  totals.connectionsClosed++
}

function ready (): Client[] {
  return [...clients].filter((c) => c.state === 'ready')
}

function pick<T> (items: readonly T[]): T | undefined {
  return items[Math.floor(Math.random() * items.length)]
}

/** Issues one broadcast ('b') or group send ('g') from a random ready client. */
function send (kind: 'b' | 'g'): void {
  if (paused) return
  const sender = pick(ready())
  if (sender === undefined) return
  if (inFlight >= MAX_IN_FLIGHT) {
    totals.skippedTicks++
    return
  }
  const seq = ++sender.seq
  const record: SendRecord = kind === 'b'
    ? { key: `b|${sender.name}|${seq}`, issuedAt: tick(), completedAt: null }
    : { key: `g|${sender.group}|${sender.name}|${seq}`, issuedAt: tick(), completedAt: null }
  if (kind === 'b') broadcasts.push(record)
  else {
    const list = groupSends.get(sender.group) ?? []
    list.push(record)
    groupSends.set(sender.group, list)
  }
  const invocation = kind === 'b'
    ? sender.connection.invoke('Broadcast', sender.name, seq)
    : sender.connection.invoke('GroupSend', sender.group, sender.name, seq)
  inFlight++
  const done = withTimeout(`${sender.name} ${record.key}`, invocation).then(
    () => {
      record.completedAt = tick()
      totals.sent++
    },
    (err: Error) => { fail(`${sender.name} (${cellName(sender.cell)}) send ${record.key} failed: ${err.message}`) }
  ).finally(() => {
    inFlight--
    sender.pending.delete(done)
  })
  sender.pending.add(done)
}

async function inBatches<T> (items: readonly T[], size: number, run: (item: T) => Promise<void>): Promise<void> {
  for (let i = 0; i < items.length; i += size) await Promise.all(items.slice(i, i + size).map(run))
}

// ---------------------------------------------------------------- figures

/** Least-squares slope of y over x. */
function slope (points: ReadonlyArray<[number, number]>): number {
  const n = points.length
  if (n < 2) return 0
  const mx = points.reduce((s, [x]) => s + x, 0) / n
  const my = points.reduce((s, [, y]) => s + y, 0) / n
  const sxy = points.reduce((s, [x, y]) => s + (x - mx) * (y - my), 0)
  const sxx = points.reduce((s, [x]) => s + (x - mx) ** 2, 0)
  return sxx === 0 ? 0 : sxy / sxx
}

const fmt = (n: number, digits = 0): string => n.toLocaleString('en-US', { minimumFractionDigits: digits, maximumFractionDigits: digits })

function cpuModel (): string {
  return /^model name\s*:\s*(.+)$/m.exec(readFileSync('/proc/cpuinfo', 'utf8'))?.[1]?.trim() ?? 'unknown'
}

// ---------------------------------------------------------------- main

async function main (): Promise<number> {
  const { settings, ci } = parseCli(process.argv.slice(2))
  const startedAt = new Date()
  const loadBefore = loadavg()[0]!
  const loadSamples: number[] = []
  process.stderr.write(`soak${ci ? ' (CI size)' : ''}: ${settings.connections} connections over ${CELLS.map(cellName).join(', ')}, ` +
    `${settings.durationSec} s, ${settings.broadcastsPerSec} broadcasts/s, ${settings.groupSendsPerSec} group sends/s ` +
    `(${settings.groups} groups), ${settings.churnPerSec} connections replaced/s; load average ${fmt(loadBefore, 2)}\n`)

  const server = await startServer()
  const hubUrl = `${server.baseUrl}/hub`
  const serverDied = new Promise<never>((_resolve, reject) => {
    server.child.once('exit', (code, signal) => { reject(new Error(`the soak server exited (${code ?? signal}) during the run`)) })
  })
  serverDied.catch(() => {})

  const heap: Array<[number, number]> = []
  let quietMs = 0
  const timers: NodeJS.Timeout[] = []
  let churning = Promise.resolve()
  try {
    await Promise.race([
      inBatches(Array.from({ length: settings.connections }), START_CONCURRENCY, () => enter(hubUrl, settings)),
      serverDied
    ])
    process.stderr.write(`${clients.size} connected\n`)
    const t0 = Date.now()
    timers.push(setInterval(() => { send('b') }, 1000 / settings.broadcastsPerSec))
    timers.push(setInterval(() => { send('g') }, 1000 / settings.groupSendsPerSec))
    let churnBusy = false
    timers.push(setInterval(() => {
      // One churn step at a time: on a slow machine a step is skipped rather than overlapped.
      if (churnBusy || paused) return
      churnBusy = true
      churning = (async () => {
        const leaving = ready().sort(() => Math.random() - 0.5).slice(0, settings.churnPerSec)
        await Promise.all(leaving.map(leave))
        await Promise.all(leaving.map(() => enter(hubUrl, settings)))
      })().finally(() => { churnBusy = false })
    }, 1000))
    /**
     * Samples are taken at a quiet point, so that they compare: no send or
     * churn step in progress, and every client fenced (whatever the server had
     * queued has been delivered). Otherwise messages still buffered for slow
     * clients, which a loaded machine has more of as the run goes on, would
     * read as heap growth.
     */
    const sampleHeap = async (): Promise<void> => {
      const sec = (Date.now() - t0) / 1000
      // Warm-up samples only show progress: no quiet point for them.
      const counts = sec >= settings.warmUpSec
      paused = counts
      const quietFrom = Date.now()
      if (counts) {
        await churning
        await Promise.allSettled([...clients].flatMap((c) => [...c.pending]))
        await inBatches(ready(), START_CONCURRENCY * 2, async (c) => {
          await withTimeout(`${c.name} Fence`, c.connection.invoke('Fence')).catch((err: Error) => {
            if (c.state === 'ready') fail(`${c.name} (${cellName(c.cell)}) Fence failed: ${err.message}`)
          })
        })
      }
      const kb = await heapUsedKB(server)
      paused = false
      quietMs += Date.now() - quietFrom
      loadSamples.push(loadavg()[0]!)
      if (counts) heap.push([sec / 60, kb])
      process.stderr.write(`${fmt(sec)} s: ${clients.size} connected, ${fmt(totals.sent)} sent, ${fmt(totals.received)} received, heap ${fmt(kb / 1024, 1)} MB, load ${fmt(loadavg()[0]!, 2)}\n`)
    }
    await Promise.race([
      (async () => {
        while (Date.now() - t0 < settings.durationSec * 1000) {
          const wait = Math.min(settings.heapSampleSec * 1000, settings.durationSec * 1000 - (Date.now() - t0))
          await new Promise((resolve) => setTimeout(resolve, wait))
          await sampleHeap()
        }
      })(),
      serverDied
    ])
    for (const timer of timers) clearInterval(timer)
    await Promise.race([churning, serverDied])
    // Every connection still there leaves the same way: its fence, then stop().
    await Promise.race([inBatches(ready(), START_CONCURRENCY, leave), serverDied])
  } catch (err) {
    fail((err as Error).message)
  } finally {
    for (const timer of timers) clearInterval(timer)
    server.child.kill('SIGKILL')
  }

  const heapSlope = slope(heap)
  const minutes = settings.durationSec / 60
  const loadDuring = loadSamples.length === 0 ? loadBefore : loadSamples.reduce((s, x) => s + x, 0) / loadSamples.length
  // A fit over less than MIN_FIT_SEC says more about warm-up than about leaks: no verdict.
  const fitSec = heap.length < 2 ? 0 : (heap[heap.length - 1]![0] - heap[0]![0]) * 60
  const heapJudged = fitSec >= MIN_FIT_SEC
  const heapOk = !heapJudged || heapSlope <= settings.maxHeapSlopeKBPerMin
  const ok = totals.lost === 0 && totals.duplicated === 0 && totals.failures.length === 0 && heapOk

  const summary = {
    date: startedAt.toISOString(),
    cpu: cpuModel(),
    node: process.version,
    settings,
    totals: { ...totals },
    perCell: Object.fromEntries(perCell),
    heapSamples: heap,
    heapSlopeKBPerMin: heapSlope,
    quietMs,
    load: { before: loadBefore, during: loadDuring, after: loadavg()[0]! }
  }
  mkdirSync(join(benchDir, 'results'), { recursive: true })
  const file = join(benchDir, 'results', `${summary.date.replace(/[:.]/g, '-')}-soak${ci ? '-ci' : ''}.json`)
  writeFileSync(file, JSON.stringify(summary, null, 2) + '\n')

  const cellRows = CELLS.map((cell) => {
    const c = perCell.get(cellName(cell))!
    return `| ${cellName(cell)} | ${fmt(c.received)} | ${fmt(c.expected)} | ${fmt(c.lost)} | ${fmt(c.duplicated)} |`
  })
  process.stdout.write(`
- ${summary.date}; ${summary.cpu}; Node ${summary.node}
- ${settings.connections} connections (official @microsoft/signalr clients, ${CELLS.length} transport/protocol cells), ${fmt(minutes, 1)} min, ${settings.churnPerSec} replaced a second (${fmt(totals.connectionsOpened)} opened, ${fmt(totals.connectionsClosed)} closed by the client)
- ${fmt(totals.sent)} messages sent (broadcasts and group sends, aiming at ${settings.broadcastsPerSec} and ${settings.groupSendsPerSec} a second, ${settings.groups} groups; paused ${fmt(quietMs / 10 / settings.durationSec)} % of the time for heap samples); ${fmt(totals.received)} deliveries received, ${fmt(totals.expected)} of them checked against a receiver's connected window
- lost ${fmt(totals.lost)}, duplicated ${fmt(totals.duplicated)}; ${totals.failures.length} failures; ${fmt(totals.skippedTicks)} sends skipped (in-flight bound)
- server heap slope ${fmt(heapSlope, 1)} KB/min over ${heap.length} samples after ${fmt(settings.warmUpSec)} s (${heapJudged ? `bound ${fmt(settings.maxHeapSlopeKBPerMin)} KB/min` : `not judged: samples span less than ${MIN_FIT_SEC} s`})
- load average (1 min) ${fmt(loadBefore, 2)} before, ${fmt(loadDuring, 2)} on average during, ${fmt(summary.load.after, 2)} after

| receivers' cell | received | checked | lost | duplicated |
| --- | ---: | ---: | ---: | ---: |
${cellRows.join('\n')}
`)
  process.stderr.write(`wrote ${file}\n`)
  for (const failure of totals.failures) process.stderr.write(`failure: ${failure}\n`)
  if (!heapOk) process.stderr.write(`failure: heap slope ${fmt(heapSlope, 1)} KB/min exceeds ${settings.maxHeapSlopeKBPerMin} KB/min\n`)
  process.stderr.write(`soak: ${ok ? 'passed' : 'FAILED'}\n`)
  return ok ? 0 : 1
}

main().then(
  (code) => process.exit(code),
  (err: unknown) => {
    process.stderr.write(`soak: ${err instanceof Error ? err.message : String(err)}\n`)
    process.exit(1)
  }
)
