import { spawn, type ChildProcess } from 'node:child_process'
import { fileURLToPath } from 'node:url'
import type { Test } from 'tap'

const ROOT = fileURLToPath(new URL('../..', import.meta.url))
const FIXTURE = 'test/fixtures/scaleout-server.ts'
/** Bound on a child's start (tsx compiles on first load); a bound, not a wait. */
const START_TIMEOUT_MS = 30_000

export interface ChildServer {
  readonly name: string
  readonly port: number
  /** http://127.0.0.1:PORT */
  readonly baseUrl: string
  /** ws://127.0.0.1:PORT */
  readonly wsUrl: string
  readonly child: ChildProcess
  /** Resolves with how the process ended. */
  readonly exited: Promise<{ code: number | null, signal: NodeJS.Signals | null }>
  /** Everything the child wrote to stderr so far. */
  stderr (): string
}

/** Another server script than the Redis one (same READY protocol), with its environment. */
export interface FixtureSpec {
  /** Default: the Redis fixture. */
  path?: string
  env?: Record<string, string>
}

/**
 * Spawns `test/fixtures/scaleout-server.ts` (a Fastify app on the Redis
 * backplane) and resolves once it prints `READY <port>`. The child is killed
 * in teardown, and when this process exits, whatever happened in between.
 */
export function spawnServer (t: Test, redisPort: number, name: string, fixture?: FixtureSpec): Promise<ChildServer> {
  return spawnReady(t, name, ['--import', 'tsx', fixture?.path ?? FIXTURE],
    { REDIS_PORT: String(redisPort), ...fixture?.env, SERVER_NAME: name, PORT: '0' })
}

/**
 * Runs `node <args>` from the repository root and resolves once the child
 * prints `READY <port>`; killed like `spawnServer`'s children.
 */
export async function spawnReady (t: Test, name: string, args: string[], env: Record<string, string> = {}): Promise<ChildServer> {
  const child = spawn(process.execPath, args, {
    cwd: ROOT,
    env: { ...process.env, ...env },
    // stdin stays open as a lifeline: the child exits when it ends (this process died).
    stdio: ['pipe', 'pipe', 'pipe']
  })
  const killOnExit = (): void => { child.kill('SIGKILL') }
  process.once('exit', killOnExit)
  const exited = new Promise<{ code: number | null, signal: NodeJS.Signals | null }>((resolve) => {
    child.once('exit', (code, signal) => { resolve({ code, signal }) })
  })
  t.teardown(async () => {
    process.off('exit', killOnExit)
    if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL')
    await exited
  })

  let stderr = ''
  child.stderr!.setEncoding('utf8').on('data', (chunk: string) => { stderr = (stderr + chunk).slice(-8000) })
  let stdout = ''
  const port = await new Promise<number>((resolve, reject) => {
    const timer = setTimeout(() => { reject(new Error(`${name} did not print READY within ${START_TIMEOUT_MS} ms; stderr: ${stderr}`)) }, START_TIMEOUT_MS)
    child.stdout!.setEncoding('utf8').on('data', (chunk: string) => {
      stdout += chunk
      const match = /^READY (\d+)$/m.exec(stdout)
      if (match !== null) {
        clearTimeout(timer)
        resolve(Number(match[1]))
      }
    })
    void exited.then(({ code, signal }) => {
      clearTimeout(timer)
      reject(new Error(`${name} exited (code ${code}, signal ${signal}) before READY; stderr: ${stderr}`))
    })
  })
  return {
    name,
    port,
    baseUrl: `http://127.0.0.1:${port}`,
    wsUrl: `ws://127.0.0.1:${port}`,
    child,
    exited,
    stderr: () => stderr
  }
}

/** Spawns several servers at once (their start-up is mostly compile time). */
export function spawnServers (t: Test, redisPort: number, names: string[], fixture?: FixtureSpec): Promise<ChildServer[]> {
  return Promise.all(names.map((name) => spawnServer(t, redisPort, name, fixture)))
}
