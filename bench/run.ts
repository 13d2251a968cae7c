/**
 * The benchmark driver: fastify-signalr (JSON and MessagePack protocols)
 * against Socket.IO 4 and the raw `ws` floor, each server in its own process,
 * the load in another. The http-* scenarios put fastify-signalr's long
 * polling (JSON, MessagePack) and Server-Sent Events (JSON) against Socket.IO's
 * polling transport instead.
 *
 *   npm run bench          full run (3 repetitions), rewrites bench/RESULTS.md
 *   npm run bench:quick    one short repetition
 *   npm run bench:smoke    tiny counts: proves every server and scenario works
 *
 * Extra flags: --only=echo-100,storm-5000  --servers=ws,signalr-json  --reps=N
 * --cpu-prof (servers write V8 profiles to bench/profiles/). A run narrowed by
 * --only, --servers or --reps never rewrites RESULTS.md. BENCH_IN_FLIGHT
 * (default 2000) sets how many fan-out deliveries may be under way at once.
 *
 * Servers run in turn for each scenario of each repetition (ws, socketio,
 * signalr-json, signalr-msgpack, ws, …), so that ratios compare runs that were close in time;
 * each ratio is taken within one repetition, then the median is reported.
 */
import { execFileSync, spawn, type ChildProcess } from 'node:child_process'
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs'
import { loadavg } from 'node:os'
import { dirname, join } from 'node:path'
import { createInterface } from 'node:readline'
import { fileURLToPath } from 'node:url'
import type { LoadConfig, LoadResult, ScenarioKind, ServerName } from './load.js'
import { buildServers, serverScript } from './built.js'
import { chartSubtitle, SERVER_LABELS as SERVER_LABEL, writeChart } from './chart.js'
import { clockTicks, statusKB } from './proc.js'

const benchDir = dirname(fileURLToPath(import.meta.url))
const rootDir = dirname(benchDir)

// ---------------------------------------------------------------- settings

type Mode = 'full' | 'quick' | 'smoke'

interface Scenario {
  id: string
  kind: ScenarioKind
  label: string
  connections: number
  groups: number
  window: number
  /** Over HTTP long polling and SSE (HTTP_SERVERS) rather than WebSockets (WS_SERVERS). */
  http: boolean
}

interface Settings {
  reps: number
  warmMs: number
  measureMs: number
  connectConcurrency: number
  scenarios: Scenario[]
}

/** Every WebSocket scenario runs on each of these... */
const WS_SERVERS: ServerName[] = ['ws', 'socketio', 'signalr-json', 'signalr-msgpack']
/** ...and every HTTP one on each of these (MessagePack needs binary, which SSE cannot carry). */
const HTTP_SERVERS: ServerName[] = ['socketio-polling', 'signalr-lp-json', 'signalr-lp-msgpack', 'signalr-sse-json']
const SERVERS: ServerName[] = [...WS_SERVERS, ...HTTP_SERVERS]
/** The servers the targets of issue 3 apply to: fastify-signalr with either protocol. */
const OURS: ServerName[] = ['signalr-json', 'signalr-msgpack']
/** The servers the HTTP target of issue 13 applies to. */
const OURS_HTTP: ServerName[] = ['signalr-lp-json', 'signalr-lp-msgpack', 'signalr-sse-json']
const PAYLOAD_BYTES = 100

function echo (connections: number): Scenario {
  return { id: `echo-${connections}`, kind: 'echo', label: `echo RPC, ${connections} conns`, connections, groups: 0, window: 0, http: false }
}
// The window keeps about IN_FLIGHT deliveries under way: enough to keep the
// server busy, few enough that latency is not mostly time spent queued.
const IN_FLIGHT = Number(process.env.BENCH_IN_FLIGHT ?? 2000)
function broadcast (connections: number): Scenario {
  const window = Math.max(2, Math.min(64, Math.round(IN_FLIGHT / connections)))
  return { id: `broadcast-${connections}`, kind: 'broadcast', label: `broadcast, ${connections} conns`, connections, groups: 0, window, http: false }
}
function group (connections: number, groups: number): Scenario {
  const window = Math.max(2, Math.min(64, Math.round(IN_FLIGHT / (connections / groups))))
  return { id: `group-${connections}`, kind: 'group', label: `group fan-out, ${connections} conns / ${groups} groups`, connections, groups, window, http: false }
}
function storm (connections: number): Scenario {
  return { id: `storm-${connections}`, kind: 'storm', label: `connection storm, ${connections} conns`, connections, groups: 0, window: 0, http: false }
}
/** Echo or broadcast over long polling and SSE, against Socket.IO polling. */
function overHttp (scenario: Scenario): Scenario {
  return { ...scenario, id: `http-${scenario.id}`, label: `${scenario.label}, HTTP (long polling, SSE)`, http: true }
}
const HTTP_FULL = [overHttp(echo(100)), overHttp(echo(1000)), overHttp(broadcast(100)), overHttp(broadcast(1000))]

const MODES: Record<Mode, Settings> = {
  full: {
    reps: 3,
    warmMs: 2000,
    measureMs: 6000,
    connectConcurrency: 200,
    scenarios: [echo(100), echo(1000), broadcast(1000), broadcast(5000), group(1000, 100), storm(5000), ...HTTP_FULL]
  },
  quick: {
    reps: 1,
    warmMs: 500,
    measureMs: 2500,
    connectConcurrency: 200,
    scenarios: [echo(100), echo(1000), broadcast(1000), broadcast(5000), group(1000, 100), storm(5000), ...HTTP_FULL]
  },
  smoke: {
    reps: 1,
    warmMs: 300,
    measureMs: 1000,
    connectConcurrency: 20,
    scenarios: [echo(20), broadcast(20), group(20, 4), storm(20), overHttp(echo(20)), overHttp(broadcast(20))]
  }
}

const UNIT: Record<ScenarioKind, string> = {
  echo: 'round trips/s',
  broadcast: 'deliveries/s',
  group: 'deliveries/s',
  storm: 'connections/s'
}

interface Cli {
  mode: Mode
  settings: Settings
  servers: ServerName[]
  cpuProf: boolean
  /** Only a full, unnarrowed run may rewrite RESULTS.md. */
  canonical: boolean
  /** Every scenario and server of a full or quick run: redraws bench/cpu-per-message.svg. */
  charted: boolean
}

function parseCli (argv: string[]): Cli {
  let mode: Mode = 'full'
  let only: string[] | null = null
  let servers = SERVERS
  let reps: number | null = null
  let cpuProf = false
  for (const arg of argv) {
    const [key, value = ''] = arg.split('=', 2) as [string, string?]
    if (key === '--quick') mode = 'quick'
    else if (key === '--smoke') mode = 'smoke'
    else if (key === '--full') mode = 'full'
    else if (key === '--only') only = value.split(',').filter(Boolean)
    else if (key === '--servers') servers = value.split(',').filter(Boolean) as ServerName[]
    else if (key === '--reps') reps = Number(value)
    else if (key === '--cpu-prof') cpuProf = true
    else throw new Error(`unknown argument ${arg}`)
  }
  for (const s of servers) if (!SERVERS.includes(s)) throw new Error(`unknown server ${s} (known: ${SERVERS.join(', ')})`)
  const base = MODES[mode]
  const scenarios = only === null ? base.scenarios : base.scenarios.filter((s) => only.includes(s.id))
  if (scenarios.length === 0) throw new Error(`--only matched no scenario (known: ${base.scenarios.map((s) => s.id).join(', ')})`)
  if (reps !== null && !(Number.isInteger(reps) && reps >= 1 && reps <= 20)) throw new Error('--reps must be 1..20')
  return {
    mode,
    settings: { ...base, reps: reps ?? base.reps, scenarios },
    servers,
    cpuProf,
    canonical: mode === 'full' && only === null && reps === null && servers === SERVERS,
    charted: mode !== 'smoke' && only === null && servers === SERVERS
  }
}

/** The servers `scenario` runs on in this run, in turn. */
function serversOf (cli: Cli, scenario: Scenario): ServerName[] {
  return (scenario.http ? HTTP_SERVERS : WS_SERVERS).filter((s) => cli.servers.includes(s))
}

/** The Socket.IO server `scenario` compares with: its polling transport for the HTTP scenarios. */
function socketioPeer (scenario: Scenario): ServerName {
  return scenario.http ? 'socketio-polling' : 'socketio'
}

// ---------------------------------------------------------------- processes

/** Every child still alive; killed however the driver ends. */
const live = new Set<ChildProcess>()
process.on('exit', () => {
  for (const child of live) child.kill('SIGKILL')
})
for (const signal of ['SIGINT', 'SIGTERM', 'SIGHUP'] as const) {
  process.once(signal, () => {
    for (const child of live) child.kill('SIGKILL')
    process.exit(130)
  })
}

/** Soft limit on open files to ask of children, or null when theirs already suffices. */
let raiseFilesTo: number | null = null

function checkFileLimit (needed: number): void {
  const [soft, hard] = execFileSync('/bin/sh', ['-c', 'ulimit -Sn; ulimit -Hn'], { encoding: 'utf8' })
    .trim().split('\n').map((v) => (v.trim() === 'unlimited' ? Infinity : Number(v)))
  if (soft! >= needed) return
  if (hard! < needed) {
    throw new Error(`the open-file limit is ${soft} (hard ${hard}); ${needed} are needed. Raise it (ulimit -n ${needed}) and run again.`)
  }
  raiseFilesTo = needed
}

class Child {
  readonly proc: ChildProcess
  readonly pid: number
  private stderrTail = ''
  private exitCode: number | null | undefined = undefined
  private readonly lineListeners = new Set<(line: string) => void>()
  private readonly exitListeners = new Set<() => void>()

  /** `script` is compiled JavaScript (a server) or, with `viaTsx`, TypeScript (the load generator). */
  constructor (readonly name: string, script: string, args: string[], nodeFlags: string[] = [], viaTsx = false) {
    const argv = [...nodeFlags, ...(viaTsx ? ['--import', 'tsx'] : []), script, ...args]
    // `exec` keeps the pid, so /proc/<pid> is still the node process.
    this.proc = raiseFilesTo === null
      ? spawn(process.execPath, argv, { cwd: rootDir, stdio: 'pipe' })
      : spawn('/bin/sh', ['-c', `ulimit -n ${raiseFilesTo} && exec "$0" "$@"`, process.execPath, ...argv], { cwd: rootDir, stdio: 'pipe' })
    if (this.proc.pid === undefined) throw new Error(`${name}: could not start`)
    this.pid = this.proc.pid
    live.add(this.proc)
    this.proc.stdin!.on('error', () => {})
    createInterface({ input: this.proc.stdout! }).on('line', (line) => {
      for (const listener of this.lineListeners) listener(line)
    })
    this.proc.stderr!.setEncoding('utf8')
    this.proc.stderr!.on('data', (chunk: string) => {
      this.stderrTail = (this.stderrTail + chunk).slice(-4000)
    })
    this.proc.on('exit', (code) => {
      this.exitCode = code
      live.delete(this.proc)
      for (const listener of this.exitListeners) listener()
    })
  }

  get alive (): boolean {
    return this.exitCode === undefined
  }

  describe (): string {
    const tail = this.stderrTail.trim()
    return tail === '' ? this.name : `${this.name}; its stderr ends with:\n${tail}`
  }

  /** The first stdout line for which `pick` returns a value. */
  nextLine<T> (pick: (line: string) => T | undefined, timeoutMs: number, what: string): Promise<T> {
    return new Promise<T>((resolve, reject) => {
      const cleanup = (): void => {
        clearTimeout(timer)
        this.lineListeners.delete(onLine)
        this.exitListeners.delete(onExit)
      }
      const onLine = (line: string): void => {
        const value = pick(line)
        if (value === undefined) return
        cleanup()
        resolve(value)
      }
      const onExit = (): void => {
        cleanup()
        reject(new Error(`${what}: ${this.name} exited (code ${this.exitCode}) first: ${this.describe()}`))
      }
      const timer = setTimeout(() => {
        cleanup()
        reject(new Error(`${what}: no answer from ${this.describe()} within ${timeoutMs} ms`))
      }, timeoutMs)
      this.lineListeners.add(onLine)
      this.exitListeners.add(onExit)
      if (!this.alive) onExit()
    })
  }

  /** Rejects when the process exits: raced against waits on another process. */
  died (): Promise<never> {
    const died = new Promise<never>((_resolve, reject) => {
      const onExit = (): void => reject(new Error(`${this.name} exited (code ${this.exitCode}) during the run: ${this.describe()}`))
      if (!this.alive) onExit()
      else this.exitListeners.add(onExit)
    })
    died.catch(() => {})
    return died
  }

  write (line: string): void {
    if (this.alive) this.proc.stdin!.write(line + '\n')
  }

  signal (signal: NodeJS.Signals): void {
    if (this.alive) this.proc.kill(signal)
  }

  /** Resolves once the process has exited; SIGKILL if it is still there after the timeout. */
  waitExit (timeoutMs: number): Promise<void> {
    if (!this.alive) return Promise.resolve()
    return new Promise((resolve) => {
      const timer = setTimeout(() => this.proc.kill('SIGKILL'), timeoutMs)
      this.exitListeners.add(() => {
        clearTimeout(timer)
        resolve()
      })
    })
  }

  async stop (timeoutMs = 5000): Promise<void> {
    this.signal('SIGTERM')
    await this.waitExit(timeoutMs)
  }
}

// ---------------------------------------------------------------- one run

interface RunRecord {
  rep: number
  /** Wall time of the whole run: server start to server exit. */
  wallSec: number
  scenario: string
  server: ServerName
  ok: boolean
  failure: string | null
  load: LoadResult | null
  opsPerSec: number
  serverUsPerOp: number
  serverCpuPct: number
  clientCpuPct: number
  peakRssKB: number
  rssBeforeKB: number | null
  rssAfterKB: number | null
  rssPerConnKB: number | null
}

const ticks = clockTicks()

async function runOne (cli: Cli, scenario: Scenario, server: ServerName, rep: number): Promise<RunRecord> {
  const started = Date.now()
  const record: RunRecord = {
    rep,
    wallSec: 0,
    scenario: scenario.id,
    server,
    ok: false,
    failure: null,
    load: null,
    opsPerSec: 0,
    serverUsPerOp: 0,
    serverCpuPct: 0,
    clientCpuPct: 0,
    peakRssKB: 0,
    rssBeforeKB: null,
    rssAfterKB: null,
    rssPerConnKB: null
  }
  const { settings } = cli
  const nodeFlags = ['--expose-gc']
  if (cli.cpuProf) {
    // One folder per run, so that runs never overwrite each other's profiles.
    nodeFlags.push('--cpu-prof', '--cpu-prof-dir', join(benchDir, 'profiles', `${scenario.id}-${server}-rep${rep}`))
  }
  const srv = new Child(`server ${server}`, serverScript(server), ['0'], nodeFlags)
  let load: Child | null = null
  try {
    const serverDied = srv.died()
    const port = await srv.nextLine((line) => /^READY (\d+)$/.exec(line)?.[1], 30_000, 'server start')
    const storm = scenario.kind === 'storm'
    const gc = async (): Promise<number> => {
      const done = srv.nextLine((line) => (line === 'GC' ? true : undefined), 10_000, 'server GC')
      srv.signal('SIGUSR2')
      await done
      return statusKB(srv.pid, 'VmRSS')
    }
    if (storm) record.rssBeforeKB = await gc()

    const config: LoadConfig = {
      server,
      scenario: scenario.kind,
      port: Number(port),
      serverPid: srv.pid,
      clockTicks: ticks,
      connections: scenario.connections,
      groups: scenario.groups,
      window: scenario.window,
      warmMs: settings.warmMs,
      measureMs: settings.measureMs,
      connectConcurrency: settings.connectConcurrency,
      payloadBytes: PAYLOAD_BYTES,
      hold: storm
    }
    load = new Child(`load ${server}`, join(benchDir, 'load.ts'), [JSON.stringify(config)], [], true)
    const resultTimeout = settings.warmMs + settings.measureMs + 120_000
    const result = await Promise.race([
      load.nextLine((line) => (line.startsWith('RESULT ') ? JSON.parse(line.slice(7)) as LoadResult : undefined),
        resultTimeout, 'load result'),
      serverDied
    ])
    record.load = result
    if (storm) {
      record.rssAfterKB = await gc()
      record.rssPerConnKB = (record.rssAfterKB - record.rssBeforeKB!) / result.connections
      load.write('close')
    }
    await load.waitExit(30_000)
    record.peakRssKB = statusKB(srv.pid, 'VmHWM')

    const seconds = result.windowMs / 1000
    record.opsPerSec = result.ops / seconds
    record.serverUsPerOp = result.ops > 0 ? result.serverCpuSec * 1e6 / result.ops : 0
    record.serverCpuPct = result.serverCpuSec / seconds * 100
    record.clientCpuPct = result.clientCpuSec / seconds * 100
    if (result.errors > 0) record.failure = `${result.errors} errors: ${result.errorSamples.join(' | ')}`
    else if (result.ops === 0) record.failure = 'nothing was delivered'
    record.ok = record.failure === null
  } catch (err) {
    record.failure = err instanceof Error ? err.message : String(err)
  } finally {
    if (load !== null) await load.stop()
    await srv.stop()
  }
  record.wallSec = (Date.now() - started) / 1000
  return record
}

// ---------------------------------------------------------------- summary

function median (values: number[]): number | null {
  if (values.length === 0) return null
  const sorted = [...values].sort((a, b) => a - b)
  const mid = sorted.length >> 1
  return sorted.length % 2 === 1 ? sorted[mid]! : (sorted[mid - 1]! + sorted[mid]!) / 2
}

interface Summary {
  scenario: string
  label: string
  kind: ScenarioKind
  server: ServerName
  connections: number
  reps: number
  failures: number
  opsPerSec: number | null
  connectSec: number | null
  p50Ms: number | null
  p99Ms: number | null
  serverUsPerOp: number | null
  vsWs: number | null
  vsSocketio: number | null
  serverCpuPct: number | null
  clientCpuPct: number | null
  peakRssMB: number | null
  rssPerConnKB: number | null
}

function summarize (cli: Cli, runs: RunRecord[]): Summary[] {
  const out: Summary[] = []
  for (const scenario of cli.settings.scenarios) {
    for (const server of serversOf(cli, scenario)) {
      const mine = runs.filter((r) => r.scenario === scenario.id && r.server === server)
      const ok = mine.filter((r) => r.ok)
      const of = (f: (r: RunRecord) => number | null | undefined): number | null =>
        median(ok.map(f).filter((v): v is number => typeof v === 'number' && Number.isFinite(v)))
      // Each ratio compares runs of the same repetition; the median comes after.
      const ratio = (other: ServerName): number | null => median(ok.flatMap((r) => {
        const peer = runs.find((p) => p.ok && p.rep === r.rep && p.scenario === r.scenario && p.server === other)
        return peer !== undefined && peer.serverUsPerOp > 0 ? [r.serverUsPerOp / peer.serverUsPerOp] : []
      }))
      out.push({
        scenario: scenario.id,
        label: scenario.label,
        kind: scenario.kind,
        server,
        connections: scenario.connections,
        reps: mine.length,
        failures: mine.length - ok.length,
        opsPerSec: of((r) => r.opsPerSec),
        connectSec: of((r) => (r.load === null ? null : r.load.connectMs / 1000)),
        p50Ms: of((r) => r.load?.latencyMs?.p50),
        p99Ms: of((r) => r.load?.latencyMs?.p99),
        serverUsPerOp: of((r) => r.serverUsPerOp),
        vsWs: ratio('ws'),
        vsSocketio: ratio(socketioPeer(scenario)),
        serverCpuPct: of((r) => r.serverCpuPct),
        clientCpuPct: of((r) => r.clientCpuPct),
        peakRssMB: of((r) => r.peakRssKB / 1024),
        rssPerConnKB: of((r) => r.rssPerConnKB)
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
    '| scenario | server | rate | p50 ms | p99 ms | server CPU µs/op | × raw ws | × Socket.IO | server CPU % | client CPU % | peak RSS MB | RSS KB/conn |',
    '| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |'
  ]
  for (const s of summary) {
    const rate = s.kind === 'storm'
      ? `${fmt(s.opsPerSec, 0)} ${UNIT[s.kind]} (all in ${fmt(s.connectSec, 2)} s)`
      : `${fmt(s.opsPerSec, 0)} ${UNIT[s.kind]}`
    const failed = s.failures > 0 ? ` ⚠ ${s.failures}/${s.reps} failed` : ''
    lines.push(`| ${s.label} | ${SERVER_LABEL[s.server]}${failed} | ${rate} | ${fmt(s.p50Ms)} | ${fmt(s.p99Ms)} | ` +
      `${fmt(s.serverUsPerOp)} | ${fmt(s.vsWs, 2)} | ${fmt(s.vsSocketio, 2)} | ${fmt(s.serverCpuPct, 0)} | ` +
      `${fmt(s.clientCpuPct, 0)} | ${fmt(s.peakRssMB, 1)} | ${fmt(s.rssPerConnKB, 1)} |`)
  }
  return lines.join('\n')
}

/** The targets of issue 3, checked against this run's medians for fastify-signalr, each protocol on its own. */
function targets (summary: Summary[]): string[] {
  const lines: string[] = []
  let server: ServerName = 'signalr-json'
  const check = (what: string, value: number | null, limit: number, unit: string): void => {
    const verdict = value === null ? 'not measured' : value <= limit ? 'met' : 'NOT met'
    lines.push(`- ${SERVER_LABEL[server]}, ${what}: ${value === null ? '—' : fmt(value, 2) + unit} (target ≤ ${limit}${unit}) — ${verdict}`)
  }
  for (const s of summary.filter((x) => OURS.includes(x.server))) {
    server = s.server
    if (s.kind === 'broadcast') check(`${s.label}, CPU/msg vs raw ws`, s.vsWs, 1.10, '×')
    if (s.kind === 'group') check(`${s.label}, CPU/msg vs raw ws`, s.vsWs, 1.20, '×')
    if (s.kind === 'echo') check(`${s.label}, CPU/round trip vs raw ws (zod included)`, s.vsWs, 1.30, '×')
    if (s.kind === 'storm') {
      check(`${s.label}, RSS per idle connection`, s.rssPerConnKB, 12, ' KB')
      check(`${s.label}, setup CPU per connection vs raw ws`, s.vsWs, 1.5, '×')
    }
    if (s.connections >= 1000 && s.kind !== 'storm') check(`${s.label}, CPU/op vs Socket.IO`, s.vsSocketio, 0.75, '×')
    if (s.connections >= 1000 && s.kind === 'storm') check(`${s.label}, setup CPU per connection vs Socket.IO`, s.vsSocketio, 0.75, '×')
  }
  // Issue 13: long polling and SSE, at every connection count measured.
  for (const s of summary.filter((x) => OURS_HTTP.includes(x.server))) {
    server = s.server
    check(`${s.label}, CPU/op vs Socket.IO polling (issue 13: long polling and SSE at most 0.75× Socket.IO polling)`, s.vsSocketio, 0.75, '×')
  }
  return lines
}

// ---------------------------------------------------------------- machine and files

interface Machine {
  date: string
  nproc: number
  cpu: string
  node: string
  versions: Record<string, string>
  /** 1-minute load average when the run started and when it ended: anything far above ~2-3 means other work shared the machine. */
  load: { before: number, after: number }
}

const loadBefore = loadavg()[0]!

function machine (): Machine {
  const cpuinfo = readFileSync('/proc/cpuinfo', 'utf8')
  const versions: Record<string, string> = {}
  for (const pkg of ['ws', 'socket.io', 'fastify', '@fastify/websocket', 'zod', 'msgpackr']) {
    try {
      versions[pkg] = (JSON.parse(readFileSync(join(rootDir, 'node_modules', pkg, 'package.json'), 'utf8')) as { version: string }).version
    } catch {
      versions[pkg] = '?'
    }
  }
  return {
    date: new Date().toISOString(),
    nproc: Number(execFileSync('nproc', { encoding: 'utf8' }).trim()),
    cpu: /^model name\s*:\s*(.+)$/m.exec(cpuinfo)?.[1]?.trim() ?? 'unknown',
    node: process.version,
    versions,
    load: { before: loadBefore, after: loadavg()[0]! }
  }
}

const PROFILE_PLACEHOLDER = `## Profile notes

_To be written by the maintainers: what \`node --cpu-prof\` showed (run
\`npm run bench -- --cpu-prof --only=<scenario> --servers=signalr-json\` or
\`--servers=signalr-msgpack\`; the
profiles land in bench/profiles/), what was changed because of it, and for
every target not met, why and what it would take._
`

function resultsMarkdown (cli: Cli, m: Machine, summary: Summary[], minutes: number): string {
  const resultsPath = join(benchDir, 'RESULTS.md')
  // The maintainers' notes outlive the regenerated part above them.
  let notes = PROFILE_PLACEHOLDER
  if (existsSync(resultsPath)) {
    const old = readFileSync(resultsPath, 'utf8')
    const at = old.indexOf('\n## Profile notes')
    if (at !== -1) notes = old.slice(at + 1)
  }
  const s = cli.settings
  return `# Benchmarks

Regenerated by \`npm run bench\` (everything above "Profile notes"; that
section is kept across runs). Raw figures of every run: \`bench/results/*.json\`.

## Machine

- Date: ${m.date}
- CPU: ${m.cpu}, \`nproc\` = ${m.nproc}
- Node ${m.node}; ${Object.entries(m.versions).map(([k, v]) => `${k} ${v}`).join(', ')}
- Loopback (127.0.0.1); servers and load generator share the machine
- Load average (1 min) ${fmt(m.load.before, 2)} before the run, ${fmt(m.load.after, 2)} after it
- ${s.reps} repetitions, ${s.warmMs / 1000} s warm-up, ${s.measureMs / 1000} s measured per run; whole run ${fmt(minutes, 1)} min

## Results

${table(summary)}

![Server CPU per operation, every scenario and server](cpu-per-message.svg)

How to read it:

- Every figure is the median over the repetitions. "× raw ws" and "× Socket.IO"
  divide the server CPU per operation by that of the other server in the same
  repetition, then take the median.
- An operation is a round trip (echo), a message delivered to one client
  (broadcast, group fan-out) or a connection set up (storm). Server CPU is
  utime + stime from /proc/<pid>/stat over the measured window only, after the
  warm-up; per operation it is the fair figure, since server and load share
  ${m.nproc} cores. Client CPU near 100 % means the load generator was the limit
  on the rate, not the server.
- Latency: echo is the round trip; broadcast and group are send-to-delivery
  times (sender and receivers live in one process, one clock), with a bounded
  window of sends in flight.
- Connection storm: ${s.scenarios.find((x) => x.kind === 'storm')?.connections ?? '?'} connections, ${s.connectConcurrency} handshakes at a time
  (SignalR: negotiate, WebSocket, handshake; Socket.IO: engine.io open,
  namespace connect); the rate is connections/s. RSS per connection
  is VmRSS after all connected minus before, each after a full GC, divided by
  the count. Peak RSS is VmHWM at the end of each run.
- Every server runs under plain \`node\` on compiled JavaScript, fastify-signalr
  from its built output (dist/, rebuilt first when older than lib/), as users
  run it; the load generator runs under tsx in its own process.
- fastify-signalr JSON and MessagePack serve the same hub (bench/servers/signalr-hub.ts),
  each with its protocol as the only one offered. The MessagePack load client
  decodes every message it receives, deliveries included.
- The "HTTP (long polling, SSE)" scenarios run the same hub with long polling
  or Server-Sent Events as the only transport, against Socket.IO 4 with
  \`transports: ['polling']\`; there "× Socket.IO" divides by Socket.IO polling
  and there is no raw ws figure. The load generator speaks the real protocols
  with lean node:http clients (bench/http-links.ts: negotiate, polls or one
  event stream, one POST at a time with data written meanwhile joined into the
  next, as the official clients do), not the official clients, whose cost for
  ${s.scenarios.filter((x) => x.http).reduce((m, x) => Math.max(m, x.connections), 0)} connections would make the load generator the bottleneck.

## Targets (issue 3)

${targets(summary).join('\n')}

${notes}`
}

// ---------------------------------------------------------------- main

async function main (): Promise<number> {
  const cli = parseCli(process.argv.slice(2))
  const { settings } = cli
  // An HTTP connection holds up to two sockets (poll or stream, and a POST), and the pool keeps spares.
  const maxSockets = Math.max(...settings.scenarios.map((s) => s.connections * (s.http ? 3 : 1)))
  checkFileLimit(maxSockets + 1024)
  buildServers()

  const started = Date.now()
  const runs: RunRecord[] = []
  const total = settings.reps * settings.scenarios.reduce((sum, scenario) => sum + serversOf(cli, scenario).length, 0)
  process.stderr.write(`bench (${cli.mode}): ${total} runs\n`)
  for (let rep = 1; rep <= settings.reps; rep++) {
    for (const scenario of settings.scenarios) {
      for (const server of serversOf(cli, scenario)) {
        const record = await runOne(cli, scenario, server, rep)
        runs.push(record)
        const status = record.ok
          ? `${fmt(record.opsPerSec, 0)} ${UNIT[scenario.kind]}, ${fmt(record.serverUsPerOp)} µs/op server CPU`
          : `FAILED: ${record.failure}`
        process.stderr.write(`[${runs.length}/${total}] rep ${rep} ${scenario.id} ${server}: ${status} (${fmt(record.wallSec, 1)} s)\n`)
      }
    }
  }
  const minutes = (Date.now() - started) / 60_000

  const summary = summarize(cli, runs)
  const m = machine()
  process.stdout.write(`\n${table(summary)}\n\n${cli.mode === 'smoke' ? '' : targets(summary).join('\n') + '\n\n'}`)

  const resultsDir = join(benchDir, 'results')
  mkdirSync(resultsDir, { recursive: true })
  const file = join(resultsDir, `${m.date.replace(/[:.]/g, '-')}-${cli.mode}.json`)
  writeFileSync(file, JSON.stringify({ mode: cli.mode, machine: m, settings, servers: cli.servers, minutes, summary, runs }, null, 2) + '\n')
  process.stderr.write(`wrote ${file} (${fmt(minutes, 1)} min)\n`)
  if (cli.charted) {
    writeChart(summary, chartSubtitle(cli.mode, m.date, m.node, m.nproc, cli.settings.reps))
    process.stderr.write('wrote bench/cpu-per-message.svg\n')
  }
  if (cli.canonical) {
    writeFileSync(join(benchDir, 'RESULTS.md'), resultsMarkdown(cli, m, summary, minutes))
    process.stderr.write('wrote bench/RESULTS.md\n')
  }

  const failed = runs.filter((r) => !r.ok)
  if (failed.length > 0) {
    process.stderr.write(`${failed.length} of ${runs.length} runs failed:\n`)
    for (const r of failed) process.stderr.write(`  rep ${r.rep} ${r.scenario} ${r.server}: ${r.failure}\n`)
    return 1
  }
  return 0
}

main().then(
  (code) => process.exit(code),
  (err: unknown) => {
    process.stderr.write(`bench: ${err instanceof Error ? err.message : String(err)}\n`)
    process.exit(1)
  }
)
