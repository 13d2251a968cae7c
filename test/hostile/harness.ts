import { spawn } from 'node:child_process'
import { fileURLToPath } from 'node:url'
import t, { type Test } from 'tap'

/*
 * The hostile-client harness. Each test attacks a server running in a child
 * process started with `--unhandled-rejections=strict` and an
 * `uncaughtException` handler that reports and exits (fixtures/child.ts).
 * After the test body, `hostileTest` asserts the child is still alive
 * (answers HTTP) and reported nothing, so an attack that crashes the process,
 * or leaves an unhandled rejection behind, fails the test that made it.
 */

const ROOT = fileURLToPath(new URL('../..', import.meta.url))
const CHILD = 'test/hostile/fixtures/child.ts'
/** Bound on the child's start (tsx compiles on first load); a bound, not a wait. */
const START_TIMEOUT_MS = 30_000

export interface HostileServer {
  /** http://127.0.0.1:PORT */
  readonly baseUrl: string
  /** ws://127.0.0.1:PORT */
  readonly wsUrl: string
  /** `UNCAUGHT` reports the child wrote so far. */
  uncaught (): string[]
  /** Everything the child wrote to stderr so far (the last 16 kB). */
  stderr (): string
  /** Asserts (in `t`) that the server answers HTTP and has reported no uncaught error; resolves with that verdict. */
  assertSurvived (t: Test): Promise<boolean>
}

interface ChildState {
  readonly baseUrl: string
  readonly exited: Promise<{ code: number | null, signal: NodeJS.Signals | null }>
  exitedYet (): boolean
  uncaught (): string[]
  stderr (): string
}

/**
 * Starts a server from `fixture` (a module path relative to the repository
 * root, see fixtures/child.ts) in a child process; killed in teardown of `t`.
 * Several subtests may share it: each ends with `server.assertSurvived(t)`.
 */
export async function startHostileServer (t: Test, fixture: string): Promise<HostileServer> {
  const child = spawn(process.execPath, ['--unhandled-rejections=strict', '--import', 'tsx', CHILD, fixture], {
    cwd: ROOT,
    // stdin stays open as a lifeline: the child exits when it ends (this process died).
    stdio: ['pipe', 'pipe', 'pipe']
  })
  const killOnExit = (): void => { child.kill('SIGKILL') }
  process.once('exit', killOnExit)
  let hasExited = false
  const exited = new Promise<{ code: number | null, signal: NodeJS.Signals | null }>((resolve) => {
    child.once('exit', (code, signal) => { hasExited = true; resolve({ code, signal }) })
  })
  t.teardown(async () => {
    process.off('exit', killOnExit)
    if (!hasExited) child.kill('SIGKILL')
    await exited
  })
  let stderr = ''
  const reports: string[] = []
  let pendingLine = ''
  child.stderr.setEncoding('utf8').on('data', (chunk: string) => {
    stderr = (stderr + chunk).slice(-16_000)
    const lines = (pendingLine + chunk).split('\n')
    pendingLine = lines.pop()!
    for (const line of lines) if (line.startsWith('UNCAUGHT ')) reports.push(line.slice('UNCAUGHT '.length))
  })
  let stdout = ''
  const port = await new Promise<number>((resolve, reject) => {
    const timer = setTimeout(() => { reject(new Error(`the hostile server did not start within ${START_TIMEOUT_MS} ms; stderr: ${stderr}`)) }, START_TIMEOUT_MS)
    child.stdout.setEncoding('utf8').on('data', (chunk: string) => {
      stdout += chunk
      const match = /^READY (\d+)$/m.exec(stdout)
      if (match !== null) {
        clearTimeout(timer)
        resolve(Number(match[1]))
      }
    })
    void exited.then(({ code, signal }) => {
      clearTimeout(timer)
      reject(new Error(`the hostile server exited (code ${code}, signal ${signal}) before READY; stderr: ${stderr}`))
    })
  })
  const state: ChildState = {
    baseUrl: `http://127.0.0.1:${port}`,
    exited,
    exitedYet: () => hasExited,
    uncaught: () => [...reports],
    stderr: () => stderr
  }
  return {
    baseUrl: state.baseUrl,
    wsUrl: `ws://127.0.0.1:${port}`,
    uncaught: state.uncaught,
    stderr: state.stderr,
    assertSurvived: (t) => assertSurvived(t, state)
  }
}

/** Asserts the child answers HTTP and has reported no uncaught error. */
async function assertSurvived (t: Test, state: ChildState): Promise<boolean> {
  let alive = false
  let why = ''
  if (!state.exitedYet()) {
    try {
      const response = await fetch(`${state.baseUrl}/__alive`)
      alive = response.ok && await response.text() === 'alive'
    } catch (err) {
      why = (err as Error).message
    }
  }
  // A report is written before the exit, so after a failed liveness check it is there to show.
  if (!alive && !state.exitedYet()) await Promise.race([state.exited, new Promise((resolve) => { setTimeout(resolve, 2000).unref() })])
  t.same(state.uncaught(), [], 'the server under attack reported no uncaught exception or unhandled rejection')
  t.ok(alive, `the server under attack is alive${why !== '' ? ` (${why})` : ''}${state.exitedYet() ? '; it exited: ' + state.stderr() : ''}`)
  return alive && state.uncaught().length === 0
}

/**
 * A test against a fresh server built from `fixture`. The body attacks it; the
 * harness then checks the server survived without any uncaught error.
 */
export function hostileTest (name: string, fixture: string, body: (t: Test, server: HostileServer) => Promise<void>): void {
  t.test(name, async (t) => {
    const server = await startHostileServer(t, fixture)
    try {
      await body(t, server)
    } finally {
      await server.assertSurvived(t)
    }
  })
}
