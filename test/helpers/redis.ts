import { spawn, type ChildProcess } from 'node:child_process'
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

function launch (port: number): Running {
  const child = spawn('redis-server', [
    '--port', String(port),
    '--bind', '127.0.0.1',
    '--save', '',
    '--appendonly', 'no',
    '--daemonize', 'no'
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
export async function startRedis (t: Test): Promise<RedisServer> {
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
    const running = launch(candidate)
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
      const running = launch(port)
      current = running
      await waitForPing(port, running)
    }
  }
}
