/**
 * Scale-out benchmark (issue 5, item 8): broadcast and group fan-out through
 * fastify-signalr (JSON) with
 *
 *   local    one server, in-memory lifetime manager (no backplane)
 *   redis-1  one server with the Redis backplane (every send also goes out to Redis)
 *   redis-2  two servers on one Redis, the clients split half/half, the sender
 *            on server A: half the deliveries cross Redis
 *
 *   npm run bench:redis              full run (3 repetitions), updates the
 *                                    "Scale-out over Redis" section of bench/RESULTS.md
 *   npm run bench:redis -- --smoke   tiny counts; exits non-zero if anything fails
 *   --reps=N                         another number of repetitions (RESULTS.md untouched)
 *
 * The driver starts its own redis-server on a free loopback port and kills it
 * however the run ends. Setups run in turn within each repetition (local,
 * redis-1, redis-2, local, …) so that ratios compare runs close in time; each
 * ratio and each overhead is taken within one repetition, then the median.
 * The load is bench/load.ts (raw ws clients, SignalR JSON wire).
 */
import { execFileSync, spawn, type ChildProcess } from 'node:child_process'
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs'
import { connect, createServer } from 'node:net'
import { dirname, join } from 'node:path'
import { createInterface } from 'node:readline'
import { fileURLToPath } from 'node:url'
import { buildServers, serverScript } from './built.js'
import type { LoadConfig, LoadResult, ScenarioKind } from './load.js'
import { clockTicks } from './proc.js'

const benchDir = dirname(fileURLToPath(import.meta.url))
const rootDir = dirname(benchDir)

// ---------------------------------------------------------------- settings

type Setup = 'local' | 'redis-1' | 'redis-2'
const SETUPS: Setup[] = ['local', 'redis-1', 'redis-2']
const SETUP_LABEL: Record<Setup, string> = {
  local: '1 server, no backplane',
  'redis-1': '1 server + Redis',
  'redis-2': '2 servers + Redis, clients half/half'
}

interface Scenario {
  id: string
  kind: Extract<ScenarioKind, 'broadcast' | 'group'>
  label: string
  connections: number
  groups: number
  window: number
}

// The same in-flight bound as bench/run.ts, so the single-server rows compare with RESULTS.md.
const IN_FLIGHT = Number(process.env.BENCH_IN_FLIGHT ?? 2000)
function broadcast (connections: number): Scenario {
  const window = Math.max(2, Math.min(64, Math.round(IN_FLIGHT / connections)))
  return { id: `broadcast-${connections}`, kind: 'broadcast', label: `broadcast, ${connections} conns`, connections, groups: 0, window }
}
function group (connections: number, groups: number): Scenario {
  const window = Math.max(2, Math.min(64, Math.round(IN_FLIGHT / (connections / groups))))
  return {
    id: `group-${connections}`,
    kind: 'group',
    label: `group fan-out, ${connections} conns / ${groups} groups of ${connections / groups}`,
    connections,
    groups,
    window
  }
}

interface Settings {
  reps: number
  warmMs: number
  measureMs: number
  connectConcurrency: number
  scenarios: Scenario[]
}

const FULL: Settings = {
  reps: 3,
  warmMs: 2000,
  measureMs: 5000,
  connectConcurrency: 200,
  scenarios: [broadcast(1000), group(1000, 100)]
}
const SMOKE: Settings = {
  reps: 1,
  warmMs: 300,
  measureMs: 1000,
  connectConcurrency: 20,
  scenarios: [broadcast(20), group(20, 4)]
}
const PAYLOAD_BYTES = 100

interface Cli {
  smoke: boolean
  settings: Settings
  /** Only a full run with the default repetitions writes RESULTS.md. */
  canonical: boolean
}

function parseCli (argv: string[]): Cli {
  let smoke = false
  let reps: number | null = null
  for (const arg of argv) {
    const [key, value = ''] = arg.split('=', 2) as [string, string?]
    if (key === '--smoke') smoke = true
    else if (key === '--reps') reps = Number(value)
    else throw new Error(`unknown argument ${arg} (known: --smoke, --reps=N)`)
  }
  if (reps !== null && !(Number.isInteger(reps) && reps >= 1 && reps <= 20)) throw new Error('--reps must be 1..20')
  const base = smoke ? SMOKE : FULL
  return { smoke, settings: { ...base, reps: reps ?? base.reps }, canonical: !smoke && reps === null }
}

// ---------------------------------------------------------------- processes

/** Every child still alive (servers, load, redis-server): killed however the driver ends. */
const live = new Set<ChildProcess>()
process.on('exit', () => {
  for (const child of live) child.kill('SIGKILL')
})
for (const signal of ['SIGINT', 'SIGTERM', 'SIGHUP'] as const) {
  process.once(signal, () => process.exit(130))
}

/** A child with line-wise stdout and the tail of its stderr for error messages. */
class Proc {
  readonly child: ChildProcess
  readonly pid: number
  private tail = ''
  private code: number | string | null | undefined = undefined
  private readonly onLine = new Set<(line: string) => void>()
  private readonly onExit = new Set<() => void>()

  constructor (readonly name: string, command: string, args: string[]) {
    this.child = spawn(command, args, { cwd: rootDir, stdio: 'pipe' })
    live.add(this.child)
    this.child.stdin!.on('error', () => {})
    createInterface({ input: this.child.stdout! }).on('line', (line) => {
      this.keep(line + '\n')
      for (const listener of this.onLine) listener(line)
    })
    this.child.stderr!.on('data', (chunk: Buffer) => this.keep(chunk.toString('utf8')))
    const exited = (code: number | string | null): void => {
      if (this.code !== undefined) return
      this.code = code
      live.delete(this.child)
      for (const listener of this.onExit) listener()
    }
    this.child.on('exit', (code, signal) => exited(code ?? signal))
    // A command that cannot start (not on PATH) reports here, and 'exit' may never come.
    this.child.on('error', (err) => {
      this.keep(`\n${err.message}`)
      exited('spawn error')
    })
    this.pid = this.child.pid ?? -1
  }

  /** The load generator, TypeScript under tsx. */
  static load (name: string, args: string[]): Proc {
    return new Proc(name, process.execPath, ['--import', 'tsx', join(benchDir, 'load.ts'), ...args])
  }

  /** A server, plain node on its compiled JavaScript (bench/built.ts). */
  static server (name: string, server: string, args: string[]): Proc {
    return new Proc(name, process.execPath, [serverScript(server), ...args])
  }

  get alive (): boolean {
    return this.code === undefined
  }

  describe (): string {
    const tail = this.tail.trim()
    return tail === '' ? this.name : `${this.name}; its output ends with:\n${tail}`
  }

  private keep (text: string): void {
    this.tail = (this.tail + text).slice(-3000)
  }

  /** The first stdout line for which `pick` gives a value. */
  line<T> (pick: (line: string) => T | undefined, timeoutMs: number, what: string): Promise<T> {
    return new Promise<T>((resolve, reject) => {
      const done = (): void => {
        clearTimeout(timer)
        this.onLine.delete(listen)
        this.onExit.delete(gone)
      }
      const listen = (line: string): void => {
        const value = pick(line)
        if (value === undefined) return
        done()
        resolve(value)
      }
      const gone = (): void => {
        done()
        reject(new Error(`${what}: ${this.name} exited (${String(this.code)}) first: ${this.describe()}`))
      }
      const timer = setTimeout(() => {
        done()
        reject(new Error(`${what}: nothing from ${this.describe()} within ${timeoutMs} ms`))
      }, timeoutMs)
      this.onLine.add(listen)
      this.onExit.add(gone)
      if (!this.alive) gone()
    })
  }

  /** Rejects when the process exits; raced against waits on other processes. */
  died (): Promise<never> {
    const p = new Promise<never>((_resolve, reject) => {
      const gone = (): void => reject(new Error(`${this.name} exited (${String(this.code)}) during the run: ${this.describe()}`))
      if (!this.alive) gone()
      else this.onExit.add(gone)
    })
    p.catch(() => {})
    return p
  }

  /** SIGTERM (or `signal`), SIGKILL after the timeout; resolves once it is gone. */
  stop (signal: NodeJS.Signals = 'SIGTERM', timeoutMs = 5000): Promise<void> {
    if (!this.alive) return Promise.resolve()
    return new Promise((resolve) => {
      const timer = setTimeout(() => this.child.kill('SIGKILL'), timeoutMs)
      this.onExit.add(() => {
        clearTimeout(timer)
        resolve()
      })
      this.child.kill(signal)
    })
  }
}

// ---------------------------------------------------------------- redis-server

function freePort (): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer()
    server.once('error', reject)
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address() as { port: number }
      server.close(() => resolve(port))
    })
  })
}

/** True once the server on `port` answers PING with PONG. */
function pong (port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = connect(port, '127.0.0.1')
    let reply = ''
    const end = (ok: boolean): void => {
      socket.destroy()
      resolve(ok)
    }
    socket.setTimeout(1000, () => end(false))
    socket.on('error', () => end(false))
    socket.on('connect', () => socket.write('PING\r\n'))
    socket.on('data', (chunk) => {
      reply += chunk.toString('latin1')
      if (reply.includes('\r\n')) end(reply.startsWith('+PONG'))
    })
  })
}

interface RedisServer {
  proc: Proc
  port: number
}

/**
 * A private redis-server on a free loopback port, persistence off (never the
 * machine's 6379). A port taken between choosing and binding: another try.
 */
async function startRedis (): Promise<RedisServer> {
  let last = ''
  for (let attempt = 0; attempt < 5; attempt++) {
    const port = await freePort()
    const proc = new Proc(`redis-server :${port}`, 'redis-server', [
      '--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no', '--daemonize', 'no'
    ])
    const deadline = Date.now() + 5000
    while (proc.alive && Date.now() < deadline) {
      if (await pong(port)) return { proc, port }
      await new Promise((resolve) => setTimeout(resolve, 20))
    }
    last = proc.describe()
    await proc.stop('SIGKILL')
    if (/ENOENT/.test(last)) break
  }
  throw new Error(`could not start redis-server (on Debian: apt-get install redis-server): ${last}`)
}

// ---------------------------------------------------------------- one run

interface RunRecord {
  rep: number
  scenario: string
  setup: Setup
  ok: boolean
  failure: string | null
  wallSec: number
  load: LoadResult | null
  deliveriesPerSec: number
  /** utime + stime of every hub server, per delivered message. */
  serverUsPerDelivery: number
  redisUsPerDelivery: number
  /** Share of deliveries that went through Redis to server B (redis-2 only). */
  crossShare: number | null
  sameP50Ms: number | null
  crossP50Ms: number | null
}

const ticks = clockTicks()

async function runOne (settings: Settings, redis: RedisServer, scenario: Scenario, setup: Setup, rep: number): Promise<RunRecord> {
  const started = Date.now()
  const record: RunRecord = {
    rep,
    scenario: scenario.id,
    setup,
    ok: false,
    failure: null,
    wallSec: 0,
    load: null,
    deliveriesPerSec: 0,
    serverUsPerDelivery: 0,
    redisUsPerDelivery: 0,
    crossShare: null,
    sameP50Ms: null,
    crossP50Ms: null
  }
  const redisArg = setup === 'local' ? '0' : String(redis.port)
  const servers = (setup === 'redis-2' ? ['A', 'B'] : ['A'])
    .map((name) => Proc.server(`server ${name} (${setup})`, 'signalr-redis', ['0', redisArg]))
  let load: Proc | null = null
  try {
    const anyDied = Promise.race([...servers, redis.proc].map((p) => p.died()))
    // READY comes after listen, hence after the backplane subscribed (onReady).
    const ports = await Promise.race([
      Promise.all(servers.map((s) => s.line((l) => /^READY (\d+)$/.exec(l)?.[1], 30_000, 'server start').then(Number))),
      anyDied
    ])
    const [primary, ...extra] = ports
    const config: LoadConfig = {
      server: 'signalr-json',
      scenario: scenario.kind,
      port: primary!,
      serverPid: servers[0]!.pid,
      clockTicks: ticks,
      connections: scenario.connections,
      groups: scenario.groups,
      window: scenario.window,
      warmMs: settings.warmMs,
      measureMs: settings.measureMs,
      connectConcurrency: settings.connectConcurrency,
      payloadBytes: PAYLOAD_BYTES,
      hold: false,
      extraPorts: extra,
      // The other server first, redis-server last.
      otherPids: [...servers.slice(1).map((s) => s.pid), redis.proc.pid]
    }
    load = Proc.load(`load (${setup})`, [JSON.stringify(config)])
    const result = await Promise.race([
      load.line((l) => (l.startsWith('RESULT ') ? JSON.parse(l.slice(7)) as LoadResult : undefined),
        settings.warmMs + settings.measureMs + 120_000, 'load result'),
      anyDied
    ])
    record.load = result
    const seconds = result.windowMs / 1000
    const other = result.otherCpuSec ?? []
    const serverCpu = result.serverCpuSec + other.slice(0, -1).reduce((a, b) => a + b, 0)
    const redisCpu = other.at(-1) ?? 0
    record.deliveriesPerSec = result.ops / seconds
    record.serverUsPerDelivery = result.ops > 0 ? serverCpu * 1e6 / result.ops : 0
    record.redisUsPerDelivery = result.ops > 0 ? redisCpu * 1e6 / result.ops : 0
    if (result.split !== undefined) {
      const { sameOps, crossOps, same, cross } = result.split
      record.crossShare = sameOps + crossOps > 0 ? crossOps / (sameOps + crossOps) : null
      record.sameP50Ms = same?.p50 ?? null
      record.crossP50Ms = cross?.p50 ?? null
    }
    if (result.errors > 0) record.failure = `${result.errors} errors: ${result.errorSamples.join(' | ')}`
    else if (result.ops === 0) record.failure = 'nothing was delivered'
    else if (setup === 'redis-2' && !(result.split !== undefined && result.split.crossOps > 0)) {
      record.failure = 'no delivery reached server B through Redis'
    }
    record.ok = record.failure === null
  } catch (err) {
    record.failure = err instanceof Error ? err.message : String(err)
  } finally {
    if (load !== null) await load.stop()
    await Promise.all(servers.map((s) => s.stop()))
  }
  record.wallSec = (Date.now() - started) / 1000
  return record
}

// ---------------------------------------------------------------- summary

function median (values: Array<number | null | undefined>): number | null {
  const v = values.filter((x): x is number => typeof x === 'number' && Number.isFinite(x)).sort((a, b) => a - b)
  if (v.length === 0) return null
  const mid = v.length >> 1
  return v.length % 2 === 1 ? v[mid]! : (v[mid - 1]! + v[mid]!) / 2
}

interface Summary {
  scenario: Scenario
  setup: Setup
  reps: number
  failures: number
  deliveriesPerSec: number | null
  p50Ms: number | null
  p99Ms: number | null
  serverUsPerDelivery: number | null
  /** Server CPU per delivery over that of `local` in the same repetition. */
  vsLocal: number | null
  redisUsPerDelivery: number | null
  crossShare: number | null
  sameP50Ms: number | null
  crossP50Ms: number | null
  /** Median over repetitions of (cross-server p50 − same-server p50). */
  redisRoundTripMs: number | null
}

function summarize (settings: Settings, runs: RunRecord[]): Summary[] {
  const out: Summary[] = []
  for (const scenario of settings.scenarios) {
    for (const setup of SETUPS) {
      const mine = runs.filter((r) => r.scenario === scenario.id && r.setup === setup)
      const ok = mine.filter((r) => r.ok)
      out.push({
        scenario,
        setup,
        reps: mine.length,
        failures: mine.length - ok.length,
        deliveriesPerSec: median(ok.map((r) => r.deliveriesPerSec)),
        p50Ms: median(ok.map((r) => r.load?.latencyMs?.p50)),
        p99Ms: median(ok.map((r) => r.load?.latencyMs?.p99)),
        serverUsPerDelivery: median(ok.map((r) => r.serverUsPerDelivery)),
        vsLocal: median(ok.map((r) => {
          const base = runs.find((p) => p.ok && p.rep === r.rep && p.scenario === r.scenario && p.setup === 'local')
          return base !== undefined && base.serverUsPerDelivery > 0 ? r.serverUsPerDelivery / base.serverUsPerDelivery : null
        })),
        redisUsPerDelivery: median(ok.map((r) => r.redisUsPerDelivery)),
        crossShare: median(ok.map((r) => r.crossShare)),
        sameP50Ms: median(ok.map((r) => r.sameP50Ms)),
        crossP50Ms: median(ok.map((r) => r.crossP50Ms)),
        redisRoundTripMs: median(ok.map((r) => (r.crossP50Ms !== null && r.sameP50Ms !== null ? r.crossP50Ms - r.sameP50Ms : null)))
      })
    }
  }
  return out
}

function fmt (value: number | null, digits?: number): string {
  if (value === null) return '—'
  const d = digits ?? (Math.abs(value) >= 100 ? 0 : Math.abs(value) >= 10 ? 1 : 2)
  return value.toLocaleString('en-US', { minimumFractionDigits: d, maximumFractionDigits: d })
}

function table (summary: Summary[]): string {
  const lines = [
    '| scenario | setup | delivered msg/s | p50 ms | p99 ms | server CPU µs/msg (all servers) | × 1 server | redis-server CPU µs/msg | same-server p50 ms | cross-server p50 ms | Redis round-trip overhead ms |',
    '| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |'
  ]
  for (const s of summary) {
    const failed = s.failures > 0 ? ` ⚠ ${s.failures}/${s.reps} failed` : ''
    const split = s.setup === 'redis-2'
    lines.push(`| ${s.scenario.label} | ${SETUP_LABEL[s.setup]}${failed} | ${fmt(s.deliveriesPerSec, 0)} | ${fmt(s.p50Ms)} | ${fmt(s.p99Ms)} | ` +
      `${fmt(s.serverUsPerDelivery)} | ${fmt(s.vsLocal, 2)} | ${s.setup === 'local' ? '—' : fmt(s.redisUsPerDelivery)} | ` +
      `${split ? fmt(s.sameP50Ms) : '—'} | ${split ? fmt(s.crossP50Ms) : '—'} | ${split ? fmt(s.redisRoundTripMs) : '—'} |`)
  }
  return lines.join('\n')
}

interface Machine {
  date: string
  cpu: string
  nproc: number
  node: string
  redis: string
  ioredis: string
  /** /proc/loadavg (1 min) when the run started and when it ended: other work on the machine shows here. */
  loadBefore: number
  loadAfter: number
}

function loadAverage (): number {
  return Number(readFileSync('/proc/loadavg', 'utf8').split(' ')[0])
}

function machine (loadBefore: number): Machine {
  const cpuinfo = readFileSync('/proc/cpuinfo', 'utf8')
  let ioredis = '?'
  try {
    ioredis = (JSON.parse(readFileSync(join(rootDir, 'node_modules', 'ioredis', 'package.json'), 'utf8')) as { version: string }).version
  } catch {}
  return {
    date: new Date().toISOString(),
    cpu: /^model name\s*:\s*(.+)$/m.exec(cpuinfo)?.[1]?.trim() ?? 'unknown',
    nproc: Number(execFileSync('nproc', { encoding: 'utf8' }).trim()),
    node: process.version,
    redis: /v=(\S+)/.exec(execFileSync('redis-server', ['--version'], { encoding: 'utf8' }))?.[1] ?? '?',
    ioredis,
    loadBefore,
    loadAfter: loadAverage()
  }
}

const SECTION = '## Scale-out over Redis'

function section (settings: Settings, m: Machine, summary: Summary[], minutes: number): string {
  const of = (id: string, setup: Setup): Summary | undefined => summary.find((s) => s.scenario.id === id && s.setup === setup)
  const cross = settings.scenarios.map((sc) => `${sc.kind} ${fmt(of(sc.id, 'redis-2')?.crossShare ?? null, 2)}`).join(', ')
  return `${SECTION}

Regenerated by \`npm run bench:redis\` (this section only; \`npm run bench\`
keeps it). Raw figures: \`bench/results/*-redis-full.json\`.

- ${m.date}; ${m.cpu}, \`nproc\` = ${m.nproc}; Node ${m.node}; redis-server ${m.redis} (private, loopback, persistence off); ioredis ${m.ioredis}
- fastify-signalr, JSON protocol, WebSockets, the hub of bench/servers/signalr-hub.ts; ${PAYLOAD_BYTES}-byte payloads
- ${settings.reps} repetitions, ${settings.warmMs / 1000} s warm-up, ${settings.measureMs / 1000} s measured per run, setups alternated; whole run ${fmt(minutes, 1)} min
- Load average (1 min) ${fmt(m.loadBefore, 2)} before the run, ${fmt(m.loadAfter, 2)} after it, on ${m.nproc} cores (the run itself accounts for about 2 to 3 of it: load generator, servers, Redis; a high figure before the run means other work shared the machine, which disturbs the rates far more than the CPU per message)

${table(summary)}

How to read it:

- Every figure is the median over the repetitions; "× 1 server" divides the
  server CPU per delivered message by that of "1 server, no backplane" in the
  same repetition, then takes the median.
- A delivered message is one message arriving at one client. Server CPU is
  utime + stime of every hub server process (/proc) over the measured window,
  summed and divided by the deliveries; redis-server's CPU is counted apart.
  Servers, Redis and the load generator share the ${m.nproc} cores, so with two
  servers the rate is bounded by the same cores, not doubled: CPU per message
  is the figure to compare.
- "1 server + Redis": every send is also encoded for both protocols and
  published; the server receives its own publication back and drops it.
- "2 servers": the clients are split half/half (every group has members on
  both), the sender is on server A, so about half the deliveries cross Redis
  (measured share: ${cross}).
- Latency is send-to-delivery, sender and receivers in one load process (one
  clock), with a bounded window of sends in flight. The Redis round-trip
  overhead is the p50 of deliveries to server B's clients minus the p50 of
  deliveries to server A's clients, in the same run. It is more than a Redis
  round trip: server A publishes only after it has written the message to its
  own clients (500 of them in a broadcast, 5 in a group send), and server B
  then writes to its own; so it grows with the number of local receivers.
- Every server receives its own publications back and decodes them before
  dropping them: part of what a send costs with the backplane, paid once per
  send, hence visible in group fan-out (10 receivers a send) and not in
  broadcast (1000).
`
}

/** Puts `text` in place of the old section (up to the next \`## \` heading), or appends it. */
function writeSection (text: string): void {
  const path = join(benchDir, 'RESULTS.md')
  const old = existsSync(path) ? readFileSync(path, 'utf8') : '# Benchmarks\n'
  const found = old.startsWith(SECTION + '\n') ? 0 : old.indexOf('\n' + SECTION + '\n')
  if (found === -1) {
    writeFileSync(path, old.replace(/\n*$/, '\n\n') + text)
    return
  }
  const at = found === 0 ? 0 : found + 1
  const next = old.indexOf('\n## ', at + SECTION.length)
  const rest = next === -1 ? '' : '\n' + old.slice(next + 1)
  writeFileSync(path, old.slice(0, at) + text + rest)
}

// ---------------------------------------------------------------- main

async function main (): Promise<number> {
  const cli = parseCli(process.argv.slice(2))
  const { settings } = cli
  const [soft] = execFileSync('/bin/sh', ['-c', 'ulimit -Sn'], { encoding: 'utf8' }).trim().split('\n')
  const needed = Math.max(...settings.scenarios.map((s) => s.connections)) + 1024
  if (soft !== 'unlimited' && Number(soft) < needed) throw new Error(`the open-file limit is ${soft}; ${needed} are needed (ulimit -n ${needed})`)

  buildServers()
  const started = Date.now()
  const loadBefore = loadAverage()
  const redis = await startRedis()
  const runs: RunRecord[] = []
  try {
    const total = settings.reps * settings.scenarios.length * SETUPS.length
    process.stderr.write(`bench:redis (${cli.smoke ? 'smoke' : 'full'}): redis-server on port ${redis.port}, ${total} runs\n`)
    for (let rep = 1; rep <= settings.reps; rep++) {
      for (const scenario of settings.scenarios) {
        for (const setup of SETUPS) {
          if (!redis.proc.alive) throw new Error(`redis-server died: ${redis.proc.describe()}`)
          const r = await runOne(settings, redis, scenario, setup, rep)
          runs.push(r)
          const status = r.ok
            ? `${fmt(r.deliveriesPerSec, 0)} msg/s, ${fmt(r.serverUsPerDelivery)} µs/msg servers, ${fmt(r.redisUsPerDelivery)} µs/msg redis` +
              (r.crossShare === null ? '' : `, ${fmt(r.crossShare * 100, 0)} % via Redis, p50 same ${fmt(r.sameP50Ms)} / cross ${fmt(r.crossP50Ms)} ms`)
            : `FAILED: ${r.failure}`
          process.stderr.write(`[${runs.length}/${total}] rep ${rep} ${scenario.id} ${setup}: ${status} (${fmt(r.wallSec, 1)} s)\n`)
        }
      }
    }
  } finally {
    await redis.proc.stop('SIGKILL')
  }
  const minutes = (Date.now() - started) / 60_000

  const summary = summarize(settings, runs)
  const m = machine(loadBefore)
  process.stdout.write(`\n${table(summary)}\n\n`)
  const resultsDir = join(benchDir, 'results')
  mkdirSync(resultsDir, { recursive: true })
  const mode = cli.smoke ? 'smoke' : 'full'
  const file = join(resultsDir, `${m.date.replace(/[:.]/g, '-')}-redis-${mode}.json`)
  writeFileSync(file, JSON.stringify({ mode, machine: m, settings, minutes, summary, runs }, null, 2) + '\n')
  process.stderr.write(`wrote ${file} (${fmt(minutes, 1)} min)\n`)

  const failed = runs.filter((r) => !r.ok)
  if (cli.canonical && failed.length === 0) {
    writeSection(section(settings, m, summary, minutes))
    process.stderr.write(`wrote the "${SECTION.slice(3)}" section of bench/RESULTS.md\n`)
  }
  if (failed.length > 0) {
    process.stderr.write(`${failed.length} of ${runs.length} runs failed:\n`)
    for (const r of failed) process.stderr.write(`  rep ${r.rep} ${r.scenario} ${r.setup}: ${r.failure}\n`)
    return 1
  }
  return 0
}

main().then(
  (code) => process.exit(code),
  (err: unknown) => {
    process.stderr.write(`bench:redis: ${err instanceof Error ? err.message : String(err)}\n`)
    process.exit(1)
  }
)
