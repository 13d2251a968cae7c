/**
 * Scale-out across K servers (issue 10, item 8): what each server and Redis
 * pay for group messages when the cluster grows, for both routing designs of
 * the Redis backplane, in the same run:
 *
 *   hub        every server subscribes to one channel per hub and receives,
 *              decodes and filters every message (the design before issue 10)
 *   targeted   channels per group, user and connection; a server subscribes
 *              only while it has a local member (issue 10, item 1)
 *
 * K = 1, 2, 4, 8, 16 server processes on one private redis-server (and, with
 * --redis-cluster, on a private 3-master Redis Cluster), G groups whose
 * members sit on s = 1, 2 or K servers (one connection per group and member
 * server), a fixed offered load of group sends spread over the servers.
 *
 *   npm run bench:cluster                  full run; rewrites the "Scale-out across K servers"
 *                                          section of bench/RESULTS.md and bench/cluster-received.svg
 *   npm run bench:cluster -- --smoke       K = 1, 2, tiny load (CI, well under a minute); exits
 *                                          non-zero if a group message is lost or duplicated
 *   --redis-cluster                        add the 3-master Redis Cluster runs
 *   --ks=1,2,4                             other server counts (RESULTS.md untouched)
 *   --rate=400 --warm=1                    total group sends per second and warm-up seconds (full runs)
 *   --tick=scaled|fixed                    load timer: every K × 10 ms (same burst per tick at every K, the
 *                                          default) or every 10 ms at every K (the runs before 2026-11-29 22:00)
 *   --engines=redis --routings=targeted --s=2 --no-churn
 *                                          only these runs (RESULTS.md untouched)
 *   --profile[=dir]                        a CPU profile of the first server over each measured window
 *
 * The same file is the server (`bench/cluster.ts server <json>`): a Fastify app
 * with one hub, its backplane wrapped to count what arrives, and two routes
 * for the driver: POST /load (send group messages at a rate) and GET /stats.
 */
import { execFileSync, spawn, type ChildProcess } from 'node:child_process'
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { dirname, join } from 'node:path'
import { createInterface } from 'node:readline'
import { fileURLToPath } from 'node:url'
import cluster from 'node:cluster'
import { Cluster, Redis } from 'ioredis'
import WebSocket from 'ws'
import { z } from 'zod'
import type { Backplane } from '../lib/backplane/backplane.js'
import { clusterBackplane, clusterPrimary } from '../lib/cluster/index.js'
import { redisBackplane, type RedisBackplaneOptions } from '../lib/redis/index.js'
import { freeTcpPort } from '../test/helpers/daemon.js'
import { clockTicks, cpuSeconds } from './proc.js'

const benchDir = dirname(fileURLToPath(import.meta.url))
const rootDir = dirname(benchDir)
const RS = '\u001e'

type Routing = 'hub' | 'targeted'
const ROUTINGS: Routing[] = ['hub', 'targeted']
/** node-cluster: the workers of one `node:cluster` primary on the cluster backplane (no Redis). */
type Engine = 'redis' | 'redis-cluster' | 'node-cluster'

interface ServerConfig {
  name: string
  routing: Routing
  engine: Engine
  /** One port for Redis, three for the cluster's masters, none for node-cluster. */
  redisPorts: number[]
}

// ================================================================ server role

interface ServerStats {
  cpuUs: number
  /** Of cpuUs, the part spent in the kernel (system calls, loopback TCP, scheduling). */
  systemUs: number
  /** Of cpuUs, the main thread's (the event loop); the rest is V8's and libuv's helper threads (compiler, GC). */
  mainUs: number
  /** Group messages this server sent (its share of the offered load). */
  sent: number
  /** Messages that arrived from the backplane (its stats.received). */
  received: number
  /** Of those, the ones handed to the hub's lifetime manager (a subscribed channel). */
  handed: number
  published: number
  /** Channel and payload bytes of what this server published. */
  publishedBytes: number
  dropped: number
  /** Channels subscribed right now. */
  subscriptions: number
  /** SUBSCRIBE and UNSUBSCRIBE calls so far. */
  subscribeCalls: number
  /** Times the main thread slept and was woken (voluntary context switches): event-loop wake-ups. */
  wakeups: number
  /** Times the kernel took the CPU from the main thread (involuntary context switches). */
  preempted: number
  /** read and write system calls of the whole process so far (/proc/self/io syscr, syscw). */
  reads: number
  writes: number
}

/** CPU time of this process's main thread so far (/proc/self/task/<pid>/stat, clock-tick resolution). */
function mainThreadUs (): number {
  const stat = readFileSync(`/proc/self/task/${process.pid}/stat`, 'utf8')
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ')
  return (Number(fields[11]) + Number(fields[12])) * 1e6 / ticks
}

/** Wake-ups and system calls of this process so far, from /proc/self (Linux). */
function kernelCounts (): Pick<ServerStats, 'wakeups' | 'preempted' | 'reads' | 'writes'> {
  const status = readFileSync('/proc/self/status', 'utf8')
  const io = readFileSync('/proc/self/io', 'utf8')
  const field = (text: string, name: string): number => Number(new RegExp(`^${name}:\\s+(\\d+)`, 'm').exec(text)?.[1] ?? 0)
  return {
    wakeups: field(status, 'voluntary_ctxt_switches'),
    preempted: field(status, 'nonvoluntary_ctxt_switches'),
    reads: field(io, 'syscr'),
    writes: field(io, 'syscw')
  }
}

/** Counts what passes through the backplane, without changing it. */
function counting (inner: Backplane): { backplane: Backplane, handed: () => number, subscriptions: () => number, calls: () => number, bytes: () => number } {
  let handed = 0
  let calls = 0
  let bytes = 0
  const active = new Set<string>()
  const backplane: Backplane = Object.assign(Object.create(inner) as Backplane, {
    publish (channel: string, payload: Buffer) {
      bytes += Buffer.byteLength(channel) + payload.length
      inner.publish(channel, payload)
    },
    async publishCounted (channel: string, payload: Buffer) {
      bytes += Buffer.byteLength(channel) + payload.length
      return await inner.publishCounted(channel, payload)
    },
    close: inner.close.bind(inner),
    stats: inner.stats,
    async subscribe (channel: string, onMessage: (payload: Buffer) => void) {
      calls++
      active.add(channel)
      await inner.subscribe(channel, (payload) => {
        handed++
        onMessage(payload)
      })
    },
    async unsubscribe (channel: string) {
      calls++
      active.delete(channel)
      await inner.unsubscribe(channel)
    }
  })
  return { backplane, handed: () => handed, subscriptions: () => active.size, calls: () => calls, bytes: () => bytes }
}

function redisBus (config: ServerConfig): Backplane {
  const redis = config.engine === 'redis'
    ? new Redis({ port: config.redisPorts[0], host: '127.0.0.1' })
    : new Cluster(config.redisPorts.map((port) => ({ port, host: '127.0.0.1' })))
  redis.on('error', () => {})
  // `routing` arrives with issue 10's targeted design; before it the backplane ignores it (both designs are 'hub').
  const options = { redis: redis as Redis, routing: config.routing } as RedisBackplaneOptions
  return redisBackplane(options)
}

/** The node:cluster primary: relays between `k` workers, each a `serve()` on the cluster backplane. */
function primary (k: number, config: ServerConfig): void {
  clusterPrimary()
  cluster.setupPrimary({ exec: fileURLToPath(import.meta.url), args: ['server', JSON.stringify(config)], execArgv: ['--import', 'tsx'] })
  for (let i = 0; i < k; i++) cluster.fork()
  process.stdin.on('end', () => { process.exit(0) }).resume()
}

async function serve (config: ServerConfig): Promise<void> {
  const { default: Fastify } = await import('fastify')
  const { default: signalr, defineHub } = await import('../lib/index.js')
  const counted = counting(config.engine === 'node-cluster' ? clusterBackplane() : redisBus(config))
  const hub = defineHub({
    name: 'bench',
    methods: {
      Join: { args: [z.string()], handler: (h, group) => h.groups.add(h.connectionId, group) },
      Leave: { args: [z.string()], handler: (h, group) => h.groups.remove(h.connectionId, group) }
    }
  })
  const app = Fastify({ logger: false })
  await app.register(signalr, {
    transports: ['webSockets'],
    protocols: ['json'],
    backplane: counted.backplane,
    // Bounds how long a client result for a connection that no server has can wait (issue 10 wants it to fail at once).
    clientResultTimeout: UNKNOWN_TIMEOUT_MS
  })
  app.mapHub('/hub', hub)
  const clients = () => app.signalr.hubContext(hub).clients
  let sent = 0
  let timer: NodeJS.Timeout | undefined
  app.post('/load', async (request) => {
    const body = request.body as { rate: number, tickMs: number, phaseMs: number, groups: string[], payload: string }
    clearTimeout(timer)
    clearInterval(timer)
    if (body.rate <= 0) return { ok: true }
    // A fixed rate from a tick, carrying the fraction over; the first tick after phaseMs.
    let due = 0
    let next = 0
    const tick = (): void => {
      due += body.rate * body.tickMs / 1000
      for (; due >= 1; due--) {
        const group = body.groups[next++ % body.groups.length]!
        sent++
        void clients().group(group).send('msg', body.payload)
      }
    }
    timer = setTimeout(() => { timer = setInterval(tick, body.tickMs) }, body.phaseMs)
    return { ok: true }
  })
  // --profile: a CPU profile of the measured window only (warm-up and idle left out).
  const { Session } = await import('node:inspector/promises')
  const profiler = new Session()
  app.post('/profile', async (request) => {
    const body = request.body as { file?: string }
    if (body.file === undefined) {
      profiler.connect()
      await profiler.post('Profiler.enable')
      await profiler.post('Profiler.setSamplingInterval', { interval: 100 })
      await profiler.post('Profiler.start')
    } else {
      const { profile } = await profiler.post('Profiler.stop')
      writeFileSync(body.file, JSON.stringify(profile))
      profiler.disconnect()
    }
    return { ok: true }
  })
  app.get('/unknown', async () => {
    const started = performance.now()
    const error = await clients().client('no-such-connection').invoke('anything').then(() => null, (err: Error) => err.message)
    return { ms: performance.now() - started, error }
  })
  app.get('/stats', async (): Promise<ServerStats> => {
    const cpu = process.cpuUsage()
    const stats = counted.backplane.stats
    return {
      cpuUs: cpu.user + cpu.system,
      systemUs: cpu.system,
      mainUs: mainThreadUs(),
      sent,
      received: stats.received,
      handed: counted.handed(),
      published: stats.published,
      publishedBytes: counted.bytes(),
      dropped: stats.dropped,
      subscriptions: counted.subscriptions(),
      subscribeCalls: counted.calls(),
      ...kernelCounts()
    }
  })
  // A worker needs a port of its own (exclusive), so that the driver can put clients on it.
  await app.listen({ port: 0, host: '127.0.0.1', exclusive: cluster.isWorker })
  // A worker dies with its primary; a lone server when the driver's pipe to it ends.
  if (!cluster.isWorker) process.stdin.on('end', () => { process.exit(0) }).resume()
  process.stdout.write(`READY ${(app.server.address() as { port: number }).port}\n`)
}

// ================================================================ processes

const live = new Set<ChildProcess>()
process.on('exit', () => { for (const child of live) child.kill('SIGKILL') })
for (const signal of ['SIGINT', 'SIGTERM'] as const) process.once(signal, () => process.exit(130))

function launch (command: string, args: string[], stdio: 'pipe' | 'ignore' = 'pipe'): ChildProcess {
  const child = spawn(command, args, { cwd: rootDir, stdio })
  live.add(child)
  child.once('exit', () => live.delete(child))
  return child
}

async function kill (child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return
  const gone = new Promise((resolve) => child.once('exit', resolve))
  child.kill('SIGKILL')
  await gone
}

async function until (what: string, check: () => Promise<boolean>, boundMs = 15_000): Promise<void> {
  const deadline = Date.now() + boundMs
  while (Date.now() < deadline) {
    if (await check().catch(() => false)) return
    await new Promise((resolve) => setTimeout(resolve, 50))
  }
  throw new Error(`${what}: not within ${boundMs} ms`)
}

interface RedisDeployment {
  engine: Engine
  ports: number[]
  pids: number[]
  /** One client per master, for INFO. */
  clients: Redis[]
  /** node-cluster: the primary, whose CPU is the bus's. */
  busPid?: number
  stop (): Promise<void>
}

async function startRedisServers (count: number, clusterDir: string | null): Promise<{ ports: number[], children: ChildProcess[] }> {
  const ports: number[] = []
  const children: ChildProcess[] = []
  for (let i = 0; i < count; i++) {
    const port = await freeTcpPort()
    const args = ['--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no']
    if (clusterDir !== null) args.push('--cluster-enabled', 'yes', '--cluster-config-file', join(clusterDir, `nodes-${port}.conf`), '--dir', clusterDir)
    children.push(launch('redis-server', args, 'ignore'))
    ports.push(port)
  }
  for (const port of ports) {
    const probe = new Redis({ port, host: '127.0.0.1', lazyConnect: true, maxRetriesPerRequest: 0 })
    probe.on('error', () => {})
    await until(`redis-server on ${port}`, async () => { await probe.connect().catch(() => {}); return (await probe.ping()) === 'PONG' })
    probe.disconnect()
  }
  return { ports, children }
}

async function startRedis (engine: Engine): Promise<RedisDeployment> {
  if (engine === 'node-cluster') return { engine, ports: [], pids: [], clients: [], stop: async () => {} }
  const clusterDir = engine === 'redis-cluster' ? mkdtempSync(join(tmpdir(), 'bench-cluster-')) : null
  const { ports, children } = await startRedisServers(engine === 'redis' ? 1 : 3, clusterDir)
  if (engine === 'redis-cluster') {
    execFileSync('redis-cli', ['--cluster', 'create', ...ports.map((p) => `127.0.0.1:${p}`), '--cluster-replicas', '0', '--cluster-yes'], { stdio: 'ignore' })
  }
  const clients = ports.map((port) => {
    const client = new Redis({ port, host: '127.0.0.1' })
    client.on('error', () => {})
    return client
  })
  if (engine === 'redis-cluster') {
    await until('cluster_state:ok', async () => (await Promise.all(clients.map((c) => c.cluster('INFO') as Promise<string>))).every((info) => info.includes('cluster_state:ok')))
  }
  return {
    engine,
    ports,
    pids: children.map((c) => c.pid!),
    clients,
    async stop () {
      for (const client of clients) client.disconnect()
      await Promise.all(children.map(kill))
      if (clusterDir !== null) rmSync(clusterDir, { recursive: true, force: true })
    }
  }
}

interface RedisReading { cpuSec: number, outBytes: number, commands: number, channels: number }

function infoField (info: string, field: string): number {
  return Number(new RegExp(`^${field}:([\\d.]+)`, 'm').exec(info)?.[1] ?? 0)
}

/** Summed over the masters: CPU (INFO cpu), output bytes and commands (INFO stats), pub/sub channels. */
async function readRedis (redis: RedisDeployment): Promise<RedisReading> {
  if (redis.engine === 'node-cluster') {
    return { cpuSec: redis.busPid === undefined ? 0 : cpuSeconds(redis.busPid, ticks), outBytes: 0, commands: 0, channels: 0 }
  }
  const readings = await Promise.all(redis.clients.map(async (client) => {
    const info = await client.info()
    return {
      cpuSec: infoField(info, 'used_cpu_sys') + infoField(info, 'used_cpu_user'),
      outBytes: infoField(info, 'total_net_output_bytes'),
      commands: infoField(info, 'total_commands_processed'),
      channels: infoField(info, 'pubsub_channels') + infoField(info, 'pubsubshard_channels')
    }
  }))
  return readings.reduce((a, b) => ({ cpuSec: a.cpuSec + b.cpuSec, outBytes: a.outBytes + b.outBytes, commands: a.commands + b.commands, channels: a.channels + b.channels }))
}

interface BenchServer { name: string, port: number, child: ChildProcess }

const ticks = clockTicks()

/** Resolves with the ports of the first `count` `READY <port>` lines of `child`. */
function readyPorts (child: ChildProcess, count: number, what: string): Promise<number[]> {
  let err = ''
  child.stderr!.on('data', (chunk: Buffer) => { err = (err + chunk.toString()).slice(-2000) })
  return new Promise<number[]>((resolve, reject) => {
    const ports: number[] = []
    const timer = setTimeout(() => reject(new Error(`${what} did not start: ${err}`)), 120_000)
    createInterface({ input: child.stdout! }).on('line', (line) => {
      const match = /^READY (\d+)$/.exec(line)
      if (match === null) return
      ports.push(Number(match[1]))
      if (ports.length === count) { clearTimeout(timer); resolve(ports) }
    })
    child.once('exit', () => { clearTimeout(timer); reject(new Error(`${what} exited: ${err}`)) })
  })
}

async function startServers (count: number, routing: Routing, redis: RedisDeployment): Promise<BenchServer[]> {
  const script = fileURLToPath(import.meta.url)
  const config = (name: string): string => JSON.stringify({ name, routing, engine: redis.engine, redisPorts: redis.ports } satisfies ServerConfig)
  if (redis.engine === 'node-cluster') {
    const child = launch(process.execPath, ['--import', 'tsx', script, 'primary', String(count), config('worker')])
    redis.busPid = child.pid
    const ports = await readyPorts(child, count, `the node:cluster primary with ${count} workers`)
    return ports.map((port, i) => ({ name: `s${i}`, port, child }))
  }
  return await Promise.all(Array.from({ length: count }, async (_, i) => {
    const child = launch(process.execPath, ['--import', 'tsx', script, 'server', config(`s${i}`)])
    const [port] = await readyPorts(child, 1, `server s${i}`)
    return { name: `s${i}`, port: port!, child }
  }))
}

async function stats (server: BenchServer): Promise<ServerStats> {
  return await (await fetch(`http://127.0.0.1:${server.port}/stats`)).json() as ServerStats
}

/** Starts the server's CPU profiler, or with `file` stops it and writes the profile there. */
async function profile (server: BenchServer, file: string | undefined): Promise<void> {
  const res = await fetch(`http://127.0.0.1:${server.port}/profile`, {
    method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(file === undefined ? {} : { file })
  })
  if (res.status !== 200) throw new Error(`/profile on ${server.name}: ${res.status}`)
}

async function setLoad (server: BenchServer, rate: number, tickMs: number, phaseMs: number, groups: string[], payload: string): Promise<void> {
  const res = await fetch(`http://127.0.0.1:${server.port}/load`, {
    method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ rate, tickMs, phaseMs, groups, payload })
  })
  if (res.status !== 200) throw new Error(`/load on ${server.name}: ${res.status}`)
}

// ================================================================ clients

/** A raw SignalR JSON WebSocket client: counts `msg` invocations, awaits completions. */
class Client {
  received = 0
  /** WebSocket messages (frames) that arrived: several records may share one. */
  frames = 0
  private readonly ws: WebSocket
  private nextId = 0
  private readonly calls = new Map<string, (error?: string) => void>()

  private constructor (ws: WebSocket) {
    this.ws = ws
    ws.on('message', (data: Buffer) => {
      this.frames++
      for (const part of data.toString('utf8').split(RS)) {
        if (part === '' || part === '{}') continue
        const record = JSON.parse(part) as { type: number, target?: string, invocationId?: string, error?: string }
        if (record.type === 1 && record.target === 'msg') this.received++
        else if (record.type === 3) {
          this.calls.get(record.invocationId!)?.(record.error)
          this.calls.delete(record.invocationId!)
        }
      }
    })
  }

  static async open (port: number): Promise<Client> {
    const ws = new WebSocket(`ws://127.0.0.1:${port}/hub`)
    await new Promise<void>((resolve, reject) => {
      ws.once('open', () => resolve())
      ws.once('error', reject)
    })
    const client = new Client(ws)
    const handshake = new Promise<void>((resolve) => ws.once('message', () => resolve()))
    ws.send(`{"protocol":"json","version":1}${RS}`)
    await handshake
    return client
  }

  invoke (method: string, ...args: unknown[]): Promise<void> {
    const id = String(++this.nextId)
    return new Promise((resolve, reject) => {
      this.calls.set(id, (error) => (error === undefined ? resolve() : reject(new Error(error))))
      this.ws.send(JSON.stringify({ type: 1, target: method, arguments: args, invocationId: id }) + RS)
    })
  }

  close (): void {
    this.ws.terminate()
  }
}

// ================================================================ one run

interface Settings {
  ks: number[]
  groups: number
  /** Group sends per second, over the whole cluster. */
  rate: number
  warmMs: number
  measureMs: number
  /** Idle window before the load, to subtract the processes' own idle CPU. */
  idleMs: number
  churnOps: number
  engines: Engine[]
  /** Worker counts for node-cluster (one machine: no more than its cores make sense). */
  nodeClusterKs: number[]
  /** Member spreads to run (each only where s ≤ K); null: 1, 2 and K. */
  spreads: number[] | null
  routings: Routing[]
  /** --profile: where each run writes a CPU profile of its first server over the measured window. */
  profileDir: string | null
  /** How often a server's load timer ticks (BASE_TICK_MS). */
  tick: 'scaled' | 'fixed'
  /** --no-churn: group messages only. */
  churn: boolean
  smoke: boolean
}

interface RunResult {
  engine: Engine
  routing: Routing
  k: number
  s: number
  sent: number
  expectedDeliveries: number
  delivered: number
  /** Per server: received from the backplane / group messages sent in the cluster. */
  receivedShare: number[]
  handedShare: number[]
  deliveredPerServer: number[]
  /** All servers' CPU µs per delivered message. */
  serverUsPerDelivery: number
  redisUsPerPublish: number
  redisBytesPerPublish: number
  /** Bytes per publish over the bytes of one envelope (what one subscriber gets). */
  envelopes: number | null
  subscriptionsPerServer: number[]
  redisChannels: number
  costs: Costs
  failure: string | null
}

/** Where server CPU goes: counts per delivered message over all servers (kernel counters, deterministic), idle figures per server. */
interface Costs {
  idleCpuUsPerSecPerServer: number
  idleWakeupsPerSecPerServer: number
  wakeupsPerDelivery: number
  preemptedPerDelivery: number
  readsPerDelivery: number
  writesPerDelivery: number
  /** WebSocket frames the clients received per delivered message (below 1: coalesced). */
  framesPerDelivery: number
  /** CPU µs of each server over the window, idle not subtracted. */
  cpuUsPerServer: number[]
  /** Share of the servers' CPU over the window spent in the kernel. */
  systemShare: number
  /** Share of the servers' CPU over the window on their main threads. */
  mainShare: number
}

interface ChurnResult {
  engine: Engine
  routing: Routing
  k: number
  ops: number
  opsPerSec: number
  serverUsPerOp: number
  redisUsPerOp: number
  redisCommandsPerOp: number
  subscribeCallsPerOp: number
  /** ms until a client result for a connection that no server has rejected (clientResultTimeout is UNKNOWN_TIMEOUT_MS). */
  unknownMs: number
}

const PAYLOAD = 'x'.repeat(100)
/**
 * The load timer's tick at K = 1. With `tick: 'scaled'` (the default) a server
 * of K ticks every K × 10 ms, so each tick sends the same burst at every K
 * (rate / 100 group sends), server i's first tick i × 10 ms after the load
 * starts (one burst in the cluster every 10 ms at every K, as at K = 1), and
 * only the number of senders changes. With
 * `'fixed'` every server ticks every 10 ms: at K = 16 each tick sends one
 * message, and the cluster wakes 16 times as often for the same load.
 */
const BASE_TICK_MS = 10
const UNKNOWN_TIMEOUT_MS = 1000

function sum (values: number[]): number {
  return values.reduce((a, b) => a + b, 0)
}

/** Members of group g sit on servers g, g+1, …, g+s-1 (mod K): every server holds the same number of members. */
function layout (k: number, s: number, groups: number): Array<{ group: string, server: number }> {
  const out: Array<{ group: string, server: number }> = []
  for (let g = 0; g < groups; g++) for (let j = 0; j < s; j++) out.push({ group: `g${g}`, server: (g + j) % k })
  return out
}

async function settle (clients: Client[], expected: number, boundMs: number): Promise<void> {
  const deadline = Date.now() + boundMs
  let last = -1
  let stableSince = Date.now()
  while (Date.now() < deadline) {
    const got = sum(clients.map((c) => c.received))
    if (got >= expected) return
    if (got !== last) { last = got; stableSince = Date.now() }
    if (Date.now() - stableSince > 1500) return
    await new Promise((resolve) => setTimeout(resolve, 50))
  }
}

async function measure (settings: Settings, redis: RedisDeployment, routing: Routing, servers: BenchServer[], s: number): Promise<RunResult> {
  const k = servers.length
  const members = layout(k, s, settings.groups)
  const clients = await Promise.all(members.map(async (m) => {
    const client = await Client.open(servers[m.server]!.port)
    await client.invoke('Join', m.group)
    return { client, ...m }
  }))
  const groups = Array.from({ length: settings.groups }, (_, g) => `g${g}`)
  try {
    // Idle CPU (timers, heartbeats) of K processes would otherwise be charged to the messages.
    const idleStart = await Promise.all(servers.map(stats))
    await new Promise((resolve) => setTimeout(resolve, settings.idleMs))
    const idleEnd = await Promise.all(servers.map(stats))
    const idleUsPerMs = sum(idleEnd.map((a, i) => a.cpuUs - idleStart[i]!.cpuUs)) / settings.idleMs
    // Each server sends its share, to every group in turn, in bursts of the same size at every K
    // (see BASE_TICK_MS), the servers' ticks spread evenly over the period: the cluster as a whole
    // sends one burst every 10 ms at every K, and only the number of senders changes.
    const perServer = settings.rate / k
    const tickMs = settings.tick === 'scaled' ? BASE_TICK_MS * k : BASE_TICK_MS
    await Promise.all(servers.map((server, i) => setLoad(server, perServer, tickMs, settings.tick === 'scaled' ? i * BASE_TICK_MS : 0,
      [...groups.slice(i % groups.length), ...groups.slice(0, i % groups.length)], PAYLOAD)))
    await new Promise((resolve) => setTimeout(resolve, settings.warmMs))
    if (settings.profileDir !== null) await profile(servers[0]!, undefined)
    const before = await Promise.all(servers.map(stats))
    const redisBefore = await readRedis(redis)
    const deliveredBefore = clients.map((c) => c.client.received)
    const framesBefore = clients.map((c) => c.client.frames)
    const windowStart = Date.now()
    await new Promise((resolve) => setTimeout(resolve, settings.measureMs))
    await Promise.all(servers.map((server) => setLoad(server, 0, BASE_TICK_MS, 0, groups, PAYLOAD)))
    const after0 = await Promise.all(servers.map(stats))
    const frames = sum(clients.map((c, i) => c.client.frames - framesBefore[i]!))
    if (settings.profileDir !== null) await profile(servers[0]!, join(settings.profileDir, `${redis.engine}-${routing}-K${k}-s${s}-${Date.now()}.cpuprofile`))
    const windowMs = Date.now() - windowStart
    const sentNow = sum(after0.map((a, i) => a.sent - before[i]!.sent))
    // Everything this layout's members were sent since they joined (the servers live on across layouts).
    const sentTotal = sum(after0.map((a, i) => a.sent - idleStart[i]!.sent))
    await settle(clients.map((c) => c.client), sentTotal * s, 10_000)
    const after = await Promise.all(servers.map(stats))
    const redisAfter = await readRedis(redis)

    const deliveredPerServer = servers.map((_, i) => sum(clients.map((c, j) => (c.server === i ? c.client.received - deliveredBefore[j]! : 0))))
    const delivered = sum(clients.map((c, i) => c.client.received - deliveredBefore[i]!))
    const totalDelivered = sum(clients.map((c) => c.client.received))
    const published = sum(after.map((a, i) => a.published - before[i]!.published))
    const cpuUs = sum(after0.map((a, i) => a.cpuUs - before[i]!.cpuUs)) - idleUsPerMs * windowMs
    const redisBytes = redisAfter.outBytes - redisBefore.outBytes
    const publishedBytes = sum(after.map((a, i) => a.publishedBytes - before[i]!.publishedBytes))
    // What one subscriber gets per message: RESP `*3 $7 message $<channel> $<payload>` framing (~30 bytes) included.
    const envelope = published > 0 ? publishedBytes / published + 30 : 1
    const perDelivery = (field: 'wakeups' | 'preempted' | 'reads' | 'writes'): number => delivered > 0 ? sum(after0.map((a, i) => a[field] - before[i]![field])) / delivered : 0
    const costs: Costs = {
      idleCpuUsPerSecPerServer: idleUsPerMs * 1000 / k,
      idleWakeupsPerSecPerServer: sum(idleEnd.map((a, i) => a.wakeups - idleStart[i]!.wakeups)) * 1000 / settings.idleMs / k,
      wakeupsPerDelivery: perDelivery('wakeups'),
      preemptedPerDelivery: perDelivery('preempted'),
      readsPerDelivery: perDelivery('reads'),
      writesPerDelivery: perDelivery('writes'),
      framesPerDelivery: delivered > 0 ? frames / delivered : 0,
      cpuUsPerServer: after0.map((a, i) => a.cpuUs - before[i]!.cpuUs),
      mainShare: sum(after0.map((a, i) => a.mainUs - before[i]!.mainUs)) / Math.max(1, sum(after0.map((a, i) => a.cpuUs - before[i]!.cpuUs))),
      systemShare: sum(after0.map((a, i) => a.systemUs - before[i]!.systemUs)) / Math.max(1, sum(after0.map((a, i) => a.cpuUs - before[i]!.cpuUs)))
    }
    let failure: string | null = null
    if (totalDelivered !== sentTotal * s) failure = `${totalDelivered} deliveries for ${sentTotal} group sends × ${s} members (expected ${sentTotal * s})`
    return {
      engine: redis.engine,
      routing,
      k,
      s,
      sent: sentNow,
      expectedDeliveries: sentNow * s,
      delivered,
      receivedShare: after.map((a, i) => sentNow > 0 ? (a.received - before[i]!.received) / sentNow : 0),
      handedShare: after.map((a, i) => sentNow > 0 ? (a.handed - before[i]!.handed) / sentNow : 0),
      deliveredPerServer,
      serverUsPerDelivery: delivered > 0 ? cpuUs / delivered : 0,
      redisUsPerPublish: published > 0 ? (redisAfter.cpuSec - redisBefore.cpuSec) * 1e6 / published : 0,
      redisBytesPerPublish: published > 0 ? redisBytes / published : 0,
      envelopes: published > 0 ? redisBytes / published / envelope : null,
      subscriptionsPerServer: after.map((a) => a.subscriptions),
      redisChannels: redisAfter.channels,
      costs,
      failure
    }
  } finally {
    for (const c of clients) c.client.close()
  }
}

/** Joins and leaves at full speed, one client per server, each on groups of its own. */
async function churn (settings: Settings, redis: RedisDeployment, routing: Routing, servers: BenchServer[]): Promise<ChurnResult> {
  const clients = await Promise.all(servers.map((server) => Client.open(server.port)))
  try {
    const perClient = Math.max(2, Math.round(settings.churnOps / servers.length / 2) * 2)
    const before = await Promise.all(servers.map(stats))
    const redisBefore = await readRedis(redis)
    const started = Date.now()
    await Promise.all(clients.map(async (client, i) => {
      for (let n = 0; n < perClient; n += 2) {
        await client.invoke('Join', `churn-${i}-${n}`)
        await client.invoke('Leave', `churn-${i}-${n}`)
      }
    }))
    const seconds = (Date.now() - started) / 1000
    const after = await Promise.all(servers.map(stats))
    const redisAfter = await readRedis(redis)
    const ops = perClient * servers.length
    return {
      engine: redis.engine,
      routing,
      k: servers.length,
      ops,
      opsPerSec: ops / seconds,
      serverUsPerOp: sum(after.map((a, i) => a.cpuUs - before[i]!.cpuUs)) / ops,
      redisUsPerOp: (redisAfter.cpuSec - redisBefore.cpuSec) * 1e6 / ops,
      redisCommandsPerOp: (redisAfter.commands - redisBefore.commands) / ops,
      subscribeCallsPerOp: sum(after.map((a, i) => a.subscribeCalls - before[i]!.subscribeCalls)) / ops,
      unknownMs: (await (await fetch(`http://127.0.0.1:${servers[0]!.port}/unknown`)).json() as { ms: number }).ms
    }
  } finally {
    for (const client of clients) client.close()
  }
}

// ================================================================ report

function fmt (value: number | null, digits?: number): string {
  if (value === null || !Number.isFinite(value)) return '—'
  const d = digits ?? (Math.abs(value) >= 100 ? 0 : Math.abs(value) >= 10 ? 1 : 2)
  return value.toLocaleString('en-US', { minimumFractionDigits: d, maximumFractionDigits: d })
}

function mean (values: number[]): number {
  return values.length === 0 ? 0 : sum(values) / values.length
}

function runTable (runs: RunResult[]): string {
  const lines = [
    '| engine | routing | K | s | group sends | received / server (share of sends) | handed to hub / server | delivered / server | server CPU µs / delivery (idle subtracted) | bus CPU µs / publish | Redis out bytes / publish | ≈ envelopes / publish | subscriptions / server | Redis channels |',
    '| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |'
  ]
  for (const r of runs) {
    const failed = r.failure === null ? '' : ' ⚠'
    const redisRow = r.engine !== 'node-cluster'
    lines.push(`| ${r.engine} | ${r.routing}${failed} | ${r.k} | ${r.s} | ${r.sent} | ${fmt(mean(r.receivedShare), 3)} | ${fmt(mean(r.handedShare), 3)} | ` +
      `${fmt(mean(r.deliveredPerServer), 0)} | ${fmt(r.serverUsPerDelivery)} | ${fmt(r.redisUsPerPublish)} | ${redisRow ? fmt(r.redisBytesPerPublish, 0) : '—'} | ` +
      `${redisRow ? fmt(r.envelopes, 2) : '—'} | ${fmt(mean(r.subscriptionsPerServer), 1)} | ${r.redisChannels} |`)
  }
  return lines.join('\n')
}

function churnTable (churns: ChurnResult[]): string {
  const lines = [
    '| engine | routing | K | joins + leaves | per second | server CPU µs / op | bus CPU µs / op | Redis commands / op | backplane (un)subscribes / op | client result to an unknown connection rejects after (ms) |',
    '| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |'
  ]
  for (const c of churns) {
    lines.push(`| ${c.engine} | ${c.routing} | ${c.k} | ${c.ops} | ${fmt(c.opsPerSec, 0)} | ${fmt(c.serverUsPerOp)} | ${fmt(c.redisUsPerOp)} | ${fmt(c.redisCommandsPerOp, 2)} | ${fmt(c.subscribeCallsPerOp, 2)} | ${fmt(c.unknownMs, 1)} |`)
  }
  return lines.join('\n')
}

const COLORS: Record<Routing, string> = { hub: '#c0392b', targeted: '#2471a3' }

/** Received-per-server share against K (log2 axis), one line per routing and s, plus the ideal s/K. */
function plot (runs: RunResult[], ks: number[]): string {
  const W = 640
  const H = 400
  const left = 60
  const right = 150
  const top = 30
  const bottom = 50
  const x = (k: number): number => left + (ks.length === 1 ? 0 : (Math.log2(k) - Math.log2(ks[0]!)) / (Math.log2(ks.at(-1)!) - Math.log2(ks[0]!)) * (W - left - right))
  const y = (share: number): number => top + (1 - Math.min(1.05, share) / 1.05) * (H - top - bottom)
  const parts: string[] = [
    `<svg xmlns="http://www.w3.org/2000/svg" width="${W}" height="${H}" viewBox="0 0 ${W} ${H}" font-family="sans-serif" font-size="12">`,
    `<rect width="${W}" height="${H}" fill="white"/>`,
    `<text x="${left}" y="18" font-size="14">Group messages received from Redis per server (share of all group sends)</text>`
  ]
  for (const tick of [0, 0.25, 0.5, 0.75, 1]) {
    parts.push(`<line x1="${left}" x2="${W - right}" y1="${y(tick)}" y2="${y(tick)}" stroke="#ddd"/>`,
      `<text x="${left - 8}" y="${y(tick) + 4}" text-anchor="end">${tick}</text>`)
  }
  for (const k of ks) parts.push(`<text x="${x(k)}" y="${H - bottom + 18}" text-anchor="middle">${k}</text>`)
  parts.push(`<text x="${(left + W - right) / 2}" y="${H - 12}" text-anchor="middle">K (servers)</text>`)
  let legend = 0
  const series = (label: string, points: Array<[number, number]>, color: string, dash: string): void => {
    if (points.length === 0) return
    parts.push(`<polyline fill="none" stroke="${color}" stroke-width="2" stroke-dasharray="${dash}" points="${points.map(([k, v]) => `${x(k).toFixed(1)},${y(v).toFixed(1)}`).join(' ')}"/>`)
    for (const [k, v] of points) parts.push(`<circle cx="${x(k).toFixed(1)}" cy="${y(v).toFixed(1)}" r="3" fill="${color}"/>`)
    const ly = top + 10 + legend++ * 18
    parts.push(`<line x1="${W - right + 10}" x2="${W - right + 34}" y1="${ly}" y2="${ly}" stroke="${color}" stroke-width="2" stroke-dasharray="${dash}"/>`,
      `<text x="${W - right + 40}" y="${ly + 4}">${label}</text>`)
  }
  const engine = runs[0]?.engine ?? 'redis'
  for (const routing of ROUTINGS) {
    for (const s of [1, 2]) {
      const points = ks.filter((k) => k >= s).map((k) => [k, runs.find((r) => r.engine === engine && r.routing === routing && r.k === k && r.s === s)] as const)
        .filter((p): p is readonly [number, RunResult] => p[1] !== undefined).map(([k, r]) => [k, mean(r.receivedShare)] as [number, number])
      series(`${routing}, s = ${s}`, points, COLORS[routing], s === 1 ? '' : '6 3')
    }
  }
  series('ideal s/K, s = 2', ks.filter((k) => k >= 2).map((k) => [k, 2 / k]), '#7f8c8d', '2 3')
  parts.push('</svg>')
  return parts.join('\n') + '\n'
}

const SECTION = '## Scale-out across K servers'

function section (settings: Settings, runs: RunResult[], churns: ChurnResult[], minutes: number, loadBefore: number): string {
  const cpu = /^model name\s*:\s*(.+)$/m.exec(readFileSync('/proc/cpuinfo', 'utf8'))?.[1]?.trim() ?? 'unknown'
  const redisVersion = /v=(\S+)/.exec(execFileSync('redis-server', ['--version'], { encoding: 'utf8' }))?.[1] ?? '?'
  return `${SECTION}

Regenerated by \`npm run bench:cluster\` (this section and bench/cluster-received.svg).

- ${new Date().toISOString()}; ${cpu}, \`nproc\` = ${execFileSync('nproc', { encoding: 'utf8' }).trim()}; Node ${process.version}; redis-server ${redisVersion} (private, loopback)
- K server processes, ${settings.groups} groups whose members sit on s servers (one connection per group and member server), ${settings.rate} group sends/s offered in total, spread over the servers (${settings.tick === 'scaled' ? `each server sends ${fmt(settings.rate / 100, 0)} per tick and ticks every K × ${BASE_TICK_MS} ms, the ticks spread evenly, so the cluster sends one burst every ${BASE_TICK_MS} ms at every K` : `every server ticks every ${BASE_TICK_MS} ms`}); ${settings.warmMs / 1000} s warm-up, ${settings.measureMs / 1000} s measured; ${PAYLOAD.length}-byte payloads, JSON; whole run ${fmt(minutes, 1)} min; load average ${fmt(loadBefore, 2)} before the run
- "received / server" is what a server's backplane received from Redis during the window over all group sends in the cluster (1.0: it sees every message); "handed to hub" is how many of those reached the hub's lifetime manager, which decodes each one; the server's own publications come back to it and count as received
- node-cluster: the servers are the workers of one \`node:cluster\` primary on the cluster backplane (\`fastify-signalr/cluster\`, no Redis); its "bus CPU" is the primary's, which relays every message
- Server CPU is every server process's user + system time over the window, less what the same processes used in an idle window just before (timers, heartbeats), per delivered message; Redis CPU (INFO cpu) and output bytes (INFO stats total_net_output_bytes) per published message, summed over the masters; "≈ envelopes" divides the output bytes by one subscriber's copy of a message
- Both designs run in the same run: \`hub\` is the former single channel per hub (\`redisBackplane({ routing: 'hub' })\`), \`targeted\` the channels per group, user and connection

![received per server against K](cluster-received.svg)

${runTable(runs)}

Group churn (each server's client joins and leaves groups of its own as fast as it can), and how long a client result for a connection that no server has takes to fail, with \`clientResultTimeout\` at ${UNKNOWN_TIMEOUT_MS} ms (issue 10 wants it to fail at once):

${churnTable(churns)}
`
}

function writeSection (text: string): void {
  const path = join(benchDir, 'RESULTS.md')
  const old = readFileSync(path, 'utf8')
  const at = old.indexOf(`\n${SECTION}\n`)
  if (at === -1) {
    writeFileSync(path, old.replace(/\n*$/, '\n\n') + text)
    return
  }
  const next = old.indexOf('\n## ', at + SECTION.length + 1)
  writeFileSync(path, old.slice(0, at + 1) + text + (next === -1 ? '' : old.slice(next)))
}

// ================================================================ main

function parseCli (argv: string[]): { settings: Settings, canonical: boolean } {
  let smoke = false
  let ks: number[] | null = null
  let withCluster = false
  let rate: number | null = null
  let warmMs: number | null = null
  let spreads: number[] | null = null
  let routings: Routing[] = ROUTINGS
  let only: Engine[] | null = null
  let profileDir: string | null = null
  let withChurn = true
  let tick: Settings['tick'] = 'scaled'
  for (const arg of argv) {
    const [key, value = ''] = arg.split('=', 2) as [string, string?]
    if (key === '--smoke') smoke = true
    else if (key === '--redis-cluster') withCluster = true
    else if (key === '--ks') ks = value.split(',').map(Number)
    else if (key === '--rate') rate = Number(value)
    else if (key === '--warm') warmMs = Number(value) * 1000
    else if (key === '--s') spreads = value.split(',').map(Number)
    else if (key === '--routings') routings = value.split(',') as Routing[]
    else if (key === '--engines') only = value.split(',') as Engine[]
    else if (key === '--no-churn') withChurn = false
    else if (key === '--tick' && (value === 'scaled' || value === 'fixed')) tick = value
    else if (key === '--profile') profileDir = value === '' ? join(benchDir, 'results', 'profiles') : value
    else throw new Error(`unknown argument ${arg} (known: --smoke, --redis-cluster, --ks=1,2,4, --rate=400, --warm=1, --s=1,2, --routings=hub,targeted, --engines=redis,redis-cluster,node-cluster, --profile[=dir], --no-churn, --tick=scaled|fixed)`)
  }
  if (!routings.every((r) => ROUTINGS.includes(r))) throw new Error(`--routings: ${ROUTINGS.join(', ')}`)
  if (spreads !== null && !spreads.every((n) => Number.isInteger(n) && n >= 1)) throw new Error('--s: member spreads ≥ 1')
  if (profileDir !== null) mkdirSync(profileDir, { recursive: true })
  if (rate !== null && !(rate > 0)) throw new Error('--rate: group sends per second, in total')
  if (warmMs !== null && !(warmMs >= 0)) throw new Error('--warm: seconds of warm-up')
  if (ks !== null && !ks.every((k) => Number.isInteger(k) && k >= 1 && k <= 32)) throw new Error('--ks: server counts 1..32')
  const engines: Engine[] = only ?? (withCluster ? ['redis', 'redis-cluster', 'node-cluster'] : ['redis', 'node-cluster'])
  const partial = { spreads, routings, profileDir, churn: withChurn, tick, smoke }
  const settings: Settings = smoke
    ? { ks: ks ?? [1, 2], groups: 4, rate: 100, warmMs: 300, measureMs: 1000, idleMs: 500, churnOps: 40, engines, nodeClusterKs: [2], ...partial }
    : { ks: ks ?? [1, 2, 4, 8, 16], groups: 16, rate: rate ?? 400, warmMs: warmMs ?? 1000, measureMs: 3000, idleMs: 1000, churnOps: 400, engines, nodeClusterKs: [1, 2], ...partial }
  const filtered = spreads !== null || routings !== ROUTINGS || only !== null || profileDir !== null || !withChurn || tick !== 'scaled'
  return { settings, canonical: !smoke && ks === null && !filtered }
}

async function main (): Promise<number> {
  const { settings, canonical } = parseCli(process.argv.slice(2))
  const started = Date.now()
  const loadBefore = Number(readFileSync('/proc/loadavg', 'utf8').split(' ')[0])
  const runs: RunResult[] = []
  const churns: ChurnResult[] = []
  for (const engine of settings.engines) {
    const redis = await startRedis(engine)
    try {
      for (const k of engine === 'node-cluster' ? settings.nodeClusterKs : settings.ks) {
        // The cluster backplane has no routing option: the hub's lifetime manager decides its channels.
        for (const routing of engine === 'node-cluster' ? ['targeted' as const] : settings.routings) {
          const servers = await startServers(k, routing, redis)
          try {
            for (const s of [...new Set(settings.spreads ?? [1, 2, k])].filter((s) => s <= k)) {
              const r = await measure(settings, redis, routing, servers, s)
              runs.push(r)
              process.stderr.write(`${engine} ${routing} K=${k} s=${s}: received/server ${fmt(mean(r.receivedShare), 3)}, ` +
                `${fmt(r.serverUsPerDelivery)} µs/delivery, ${fmt(r.redisBytesPerPublish, 0)} Redis bytes/publish${r.failure === null ? '' : `, FAILED: ${r.failure}`}\n` +
                `  per delivery: ${fmt(r.costs.wakeupsPerDelivery)} wake-ups, ${fmt(r.costs.preemptedPerDelivery)} preemptions, ${fmt(r.costs.readsPerDelivery)} reads, ` +
                `${fmt(r.costs.writesPerDelivery)} writes, ${fmt(r.costs.framesPerDelivery)} frames, ${fmt(100 * r.costs.systemShare, 0)} % in the kernel, ${fmt(100 * r.costs.mainShare, 0)} % on main threads; idle per server ${fmt(r.costs.idleCpuUsPerSecPerServer)} µs CPU/s, ` +
                `${fmt(r.costs.idleWakeupsPerSecPerServer)} wake-ups/s\n`)
            }
            if (!settings.churn) continue
            const c = await churn(settings, redis, routing, servers)
            churns.push(c)
            process.stderr.write(`${engine} ${routing} K=${k} churn: ${fmt(c.opsPerSec, 0)} ops/s, ${fmt(c.serverUsPerOp)} µs/op servers, ${fmt(c.redisCommandsPerOp, 2)} Redis commands/op\n`)
          } finally {
            await Promise.all([...new Set(servers.map((s) => s.child))].map(kill))
          }
        }
      }
    } finally {
      await redis.stop()
    }
  }
  const minutes = (Date.now() - started) / 60_000
  process.stdout.write(`\n${runTable(runs)}\n\n${churnTable(churns)}\n`)
  mkdirSync(join(benchDir, 'results'), { recursive: true })
  const file = join(benchDir, 'results', `${new Date().toISOString().replace(/[:.]/g, '-')}-cluster-${settings.smoke ? 'smoke' : 'full'}.json`)
  writeFileSync(file, JSON.stringify({ settings, minutes, runs, churns }, null, 2) + '\n')
  process.stderr.write(`wrote ${file} (${fmt(minutes, 1)} min)\n`)
  const failed = runs.filter((r) => r.failure !== null)
  if (canonical && failed.length === 0) {
    writeFileSync(join(benchDir, 'cluster-received.svg'), plot(runs, settings.ks))
    writeSection(section(settings, runs, churns, minutes, loadBefore))
    process.stderr.write(`wrote the "${SECTION.slice(3)}" section of bench/RESULTS.md and bench/cluster-received.svg\n`)
  }
  for (const r of failed) process.stderr.write(`FAILED ${r.engine} ${r.routing} K=${r.k} s=${r.s}: ${r.failure}\n`)
  return failed.length === 0 ? 0 : 1
}

if (process.argv[2] === 'server') {
  await serve(JSON.parse(process.argv[3]!) as ServerConfig)
} else if (process.argv[2] === 'primary') {
  primary(Number(process.argv[3]), JSON.parse(process.argv[4]!) as ServerConfig)
} else {
  main().then((code) => process.exit(code), (err: unknown) => {
    process.stderr.write(`bench:cluster: ${err instanceof Error ? err.stack ?? err.message : String(err)}\n`)
    process.exit(1)
  })
}
