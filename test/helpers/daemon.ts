import { spawn, type ChildProcess } from 'node:child_process'
import { readFile } from 'node:fs/promises'
import { connect, createServer } from 'node:net'
import type { Test } from 'tap'

/**
 * A server binary (nats-server, …) that a test runs on a free loopback port,
 * kills by PID in teardown (or when the test process exits) and can kill and
 * restart on the same port to stage an outage.
 */
export interface Daemon {
  readonly port: number
  /** Whether a process is up right now (false between `stop()` and `restart()`). */
  readonly running: boolean
  /** Kills the process (SIGKILL: an outage, not a shutdown) and waits until it has exited. */
  stop (): Promise<void>
  /** Starts a new process on the same port and waits until it is ready. */
  restart (): Promise<void>
  /**
   * Freezes the process (SIGSTOP) and resolves once the kernel reports it
   * stopped: connections stay open but nothing is answered, as with a hung
   * server. `stop()` still kills it. Linux only (reads /proc).
   */
  freeze (): Promise<void>
}

export interface DaemonSpec {
  /** For messages. */
  name: string
  command: string
  args (port: number): string[]
  /** One readiness check: resolves true once the process serves `port`. */
  ready (port: number): Promise<boolean>
}

/** Bound on a daemon becoming ready: far above a cold start. */
const READY_BOUND_MS = 5000
const RETRY_MS = 20

export function freeTcpPort (): Promise<number> {
  return new Promise((resolve, reject) => {
    const probe = createServer()
    probe.once('error', reject)
    probe.listen(0, '127.0.0.1', () => {
      const { port } = probe.address() as { port: number }
      probe.close(() => { resolve(port) })
    })
  })
}

/**
 * One probe over a fresh loopback socket: writes `send` (if any) on connect and
 * resolves whether the first line the server answers starts with `prefix`;
 * false on any failure. Readiness checks for line-based servers use it.
 */
export function firstLineStartsWith (port: number, prefix: string, send?: string): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = connect({ port, host: '127.0.0.1' })
    let text = ''
    const finish = (ok: boolean): void => {
      socket.destroy()
      resolve(ok)
    }
    socket.setTimeout(1000, () => { finish(false) })
    socket.once('error', () => { finish(false) })
    if (send !== undefined) socket.once('connect', () => { socket.write(send) })
    socket.on('data', (chunk) => {
      text += chunk.toString('latin1')
      if (text.includes('\r\n')) finish(text.startsWith(prefix))
    })
  })
}

interface Proc {
  child: ChildProcess
  gone: Promise<void>
  log: () => string
}

function launch (spec: DaemonSpec, port: number): Proc {
  const child = spawn(spec.command, spec.args(port), { stdio: ['ignore', 'pipe', 'pipe'] })
  let log = ''
  const keep = (chunk: Buffer): void => { log = (log + chunk.toString('utf8')).slice(-4000) }
  child.stdout!.on('data', keep)
  child.stderr!.on('data', keep)
  const gone = new Promise<void>((resolve) => {
    child.once('exit', () => { resolve() })
    // A spawn error (binary missing) may never be followed by 'exit'.
    child.once('error', (err) => {
      log += `\nspawn error: ${err.message}`
      resolve()
    })
  })
  return { child, gone, log: () => log }
}

async function untilReady (spec: DaemonSpec, port: number, proc: Proc): Promise<void> {
  let dead = false
  void proc.gone.then(() => { dead = true })
  const deadline = Date.now() + READY_BOUND_MS
  while (Date.now() < deadline) {
    if (dead) throw new Error(`${spec.name} on port ${port} exited before it was ready:\n${proc.log()}`)
    if (await spec.ready(port)) return
    await new Promise((resolve) => { setTimeout(resolve, RETRY_MS) })
  }
  throw new Error(`${spec.name} on port ${port} was not ready within ${READY_BOUND_MS} ms:\n${proc.log()}`)
}

/** Starts `spec` on a free port; a port taken between choosing and binding is retried with another. */
export async function startDaemon (t: Test, spec: DaemonSpec): Promise<Daemon> {
  let current: Proc | null = null
  const killOnExit = (): void => { current?.child.kill('SIGKILL') }
  process.once('exit', killOnExit)
  const stop = async (): Promise<void> => {
    const proc = current
    if (proc === null) return
    current = null
    if (proc.child.exitCode === null && proc.child.signalCode === null) process.kill(proc.child.pid!, 'SIGKILL')
    await proc.gone
  }
  t.teardown(async () => {
    await stop()
    process.off('exit', killOnExit)
  })

  let failure: unknown
  for (let attempt = 0; attempt < 5; attempt++) {
    const port = await freeTcpPort()
    current = launch(spec, port)
    try {
      await untilReady(spec, port, current)
      return {
        port,
        get running () { return current !== null },
        stop,
        async freeze () {
          if (current === null) return
          const pid = current.child.pid!
          process.kill(pid, 'SIGSTOP')
          // The signal is only queued: wait until every thread has stopped (state T in /proc/<pid>/stat).
          const stopped = async (): Promise<boolean> => / T /.test(await readFile(`/proc/${pid}/stat`, 'utf8'))
          const deadline = Date.now() + READY_BOUND_MS
          while (!await stopped()) {
            if (Date.now() > deadline) throw new Error(`${spec.name} (pid ${pid}) did not stop within ${READY_BOUND_MS} ms`)
            await new Promise((resolve) => { setTimeout(resolve, RETRY_MS) })
          }
        },
        async restart () {
          await stop()
          current = launch(spec, port)
          await untilReady(spec, port, current)
        }
      }
    } catch (err) {
      failure = err
      await stop()
    }
  }
  throw failure
}
