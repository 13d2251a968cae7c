import { spawn, type ChildProcess } from 'node:child_process'
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { connect, createServer } from 'node:net'
import type { Test } from 'tap'

export interface RedisServer {
  readonly port: number
  /** redis://127.0.0.1:PORT */
  readonly url: string
  /** Whether a redis-server process is up right now. */
  readonly running: boolean
  /** Kills the redis-server (SIGKILL: an outage, not a shutdown) and waits until it has exited. */
  stop (): Promise<void>
  /** Starts a new redis-server on the same port and waits until it answers PING. */
  restart (): Promise<void>
}

const POLL_MS = 20
/** Bound on waiting for PING: 250 × 20 ms = 5 s, far above a cold start. */
const PING_ATTEMPTS = 250

function freePort (): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer()
    server.once('error', reject)
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address() as { port: number }
      server.close(() => { resolve(port) })
    })
  })
}

/** One PING over a fresh socket: true on +PONG, false on any failure. */
function ping (port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = connect({ port, host: '127.0.0.1' })
    let answer = ''
    const done = (ok: boolean): void => {
      socket.destroy()
      resolve(ok)
    }
    socket.setTimeout(1000, () => { done(false) })
    socket.once('error', () => { done(false) })
    socket.once('connect', () => { socket.write('PING\r\n') })
    socket.on('data', (chunk) => {
      answer += chunk.toString('latin1')
      if (answer.includes('\r\n')) done(answer.startsWith('+PONG'))
    })
  })
}

interface Running {
  child: ChildProcess
  exited: Promise<void>
  output: () => string
}

function launch (port: number, extra: readonly string[] = []): Running {
  const child = spawn('redis-server', [
    '--port', String(port),
    '--bind', '127.0.0.1',
    '--save', '',
    '--appendonly', 'no',
    '--daemonize', 'no',
    ...extra
  ], { stdio: ['ignore', 'pipe', 'pipe'] })
  let output = ''
  const keep = (chunk: Buffer): void => { output = (output + chunk.toString('utf8')).slice(-4000) }
  child.stdout!.on('data', keep)
  child.stderr!.on('data', keep)
  const exited = new Promise<void>((resolve) => {
    child.once('exit', () => { resolve() })
    // spawn errors (no redis-server on PATH) arrive here, and 'exit' may never follow.
    child.once('error', (err) => {
      output += `\nspawn error: ${err.message}`
      resolve()
    })
  })
  return { child, exited, output: () => output }
}

/** Resolves once PING answers; rejects if the process exits first or the bound runs out. */
async function waitForPing (port: number, running: Running): Promise<void> {
  let exited = false
  void running.exited.then(() => { exited = true })
  for (let attempt = 0; attempt < PING_ATTEMPTS; attempt++) {
    if (exited) throw new Error(`redis-server on port ${port} exited before answering PING:\n${running.output()}`)
    if (await ping(port)) return
    await new Promise((resolve) => { setTimeout(resolve, POLL_MS) })
  }
  throw new Error(`redis-server on port ${port} did not answer PING within ${PING_ATTEMPTS * POLL_MS} ms:\n${running.output()}`)
}

/**
 * Starts a private redis-server on a free loopback port (never the machine's
 * shared 6379), with persistence off, and kills it in teardown. A port taken
 * between choosing and binding is retried with another.
 */
export async function startRedis (t: Test, extra: (port: number) => readonly string[] = () => []): Promise<RedisServer> {
  let current: Running | null = null
  // A crashed test process must not leave redis-servers behind.
  const killOnExit = (): void => { current?.child.kill('SIGKILL') }
  process.once('exit', killOnExit)

  const stop = async (): Promise<void> => {
    const running = current
    if (running === null) return
    current = null
    if (running.child.exitCode === null && running.child.signalCode === null) running.child.kill('SIGKILL')
    await running.exited
  }
  t.teardown(async () => {
    await stop()
    process.off('exit', killOnExit)
  })

  let port = 0
  let lastError: unknown
  for (let attempt = 0; attempt < 5 && port === 0; attempt++) {
    const candidate = await freePort()
    const running = launch(candidate, extra(candidate))
    current = running
    try {
      await waitForPing(candidate, running)
      port = candidate
    } catch (err) {
      lastError = err
      await stop()
    }
  }
  if (port === 0) throw lastError

  return {
    port,
    url: `redis://127.0.0.1:${port}`,
    get running () { return current !== null },
    stop,
    async restart () {
      await stop()
      const running = launch(port, extra(port))
      current = running
      await waitForPing(port, running)
    }
  }
}

export interface RedisCluster {
  /** The masters, in the order of `ports`. */
  readonly nodes: readonly RedisServer[]
  readonly ports: readonly number[]
}

/** Runs `redis-cli` with `args`; resolves with its stdout, rejects on a non-zero exit. */
export function redisCli (args: readonly string[]): Promise<string> {
  return new Promise((resolve, reject) => {
    const child = spawn('redis-cli', args, { stdio: ['ignore', 'pipe', 'pipe'] })
    let out = ''
    child.stdout.on('data', (chunk: Buffer) => { out += chunk.toString('utf8') })
    child.stderr.on('data', (chunk: Buffer) => { out += chunk.toString('utf8') })
    child.once('error', reject)
    child.once('exit', (code) => { if (code === 0) resolve(out); else reject(new Error(`redis-cli ${args.join(' ')} exited ${code}: ${out}`)) })
  })
}

/** Polls CLUSTER INFO on `port` until `cluster_state:ok` (bounded). */
export async function waitForClusterOk (port: number): Promise<void> {
  for (let attempt = 0; attempt < 500; attempt++) {
    const info = await redisCli(['-p', String(port), 'cluster', 'info']).catch(() => '')
    if (info.includes('cluster_state:ok')) return
    await new Promise((resolve) => { setTimeout(resolve, POLL_MS) })
  }
  throw new Error(`the Redis cluster on port ${port} did not reach cluster_state:ok within ${500 * POLL_MS} ms`)
}

/**
 * Starts a real 3-master Redis 7 cluster (no replicas) on free loopback
 * ports, each master with its node file in a private temporary directory,
 * and kills it in teardown. `restart()` of a master brings it back with the
 * same node file, so it rejoins with its slots. A short node timeout makes a
 * dead master noticed in about a second.
 */
export async function startRedisCluster (t: Test): Promise<RedisCluster> {
  const dir = await mkdtemp(join(tmpdir(), 'signalr-redis-cluster-'))
  t.teardown(() => rm(dir, { recursive: true, force: true }))
  const nodes: RedisServer[] = []
  for (let i = 0; i < 3; i++) {
    nodes.push(await startRedis(t, (port) => [
      '--cluster-enabled', 'yes',
      '--cluster-config-file', join(dir, `nodes-${port}.conf`),
      '--cluster-node-timeout', '1000',
      // The shards that stay up keep serving while one master is down.
      '--cluster-require-full-coverage', 'no',
      '--dir', dir
    ]))
  }
  const ports = nodes.map((n) => n.port)
  await redisCli(['--cluster', 'create', ...ports.map((p) => `127.0.0.1:${p}`), '--cluster-replicas', '0', '--cluster-yes'])
  for (const port of ports) await waitForClusterOk(port)
  return { nodes, ports }
}
