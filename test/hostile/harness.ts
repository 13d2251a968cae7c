import t, { type Test } from 'tap'
import { spawnReady, type ChildServer } from '../helpers/servers.js'

/*
 * The hostile-client harness. Each test attacks a server running in a child
 * process started with `--unhandled-rejections=strict` and an
 * `uncaughtException` handler that reports and exits (fixtures/child.ts).
 * After an attack, `assertSurvived` checks the child still answers HTTP and
 * reported nothing, so an attack that crashes the process, or leaves an
 * unhandled rejection behind, fails the test that made it.
 */

const CHILD = 'test/hostile/fixtures/child.ts'

export interface HostileServer {
  readonly baseUrl: string
  readonly wsUrl: string
  /** `UNCAUGHT` reports the child wrote so far. */
  uncaught (): string[]
  /** Asserts (in `t`) that the server answers HTTP and has reported no uncaught error; resolves with that verdict. */
  assertSurvived (t: Test): Promise<boolean>
}

function reportsOf (child: ChildServer): string[] {
  return child.stderr().split('\n').filter((line) => line.startsWith('UNCAUGHT ')).map((line) => line.slice('UNCAUGHT '.length))
}

function hasExited (child: ChildServer): boolean {
  return child.child.exitCode !== null || child.child.signalCode !== null
}

async function assertSurvived (t: Test, child: ChildServer): Promise<boolean> {
  let alive = false
  let why = ''
  if (!hasExited(child)) {
    try {
      const response = await fetch(`${child.baseUrl}/__alive`)
      alive = response.ok && await response.text() === 'alive'
    } catch (err) {
      why = ` (${(err as Error).message})`
    }
  }
  // The child writes its report before it exits: once it has exited, the report is complete.
  if (!alive) await child.exited
  const reports = reportsOf(child)
  t.same(reports, [], 'the server under attack reported no uncaught exception or unhandled rejection')
  t.ok(alive, `the server under attack is alive${why}${hasExited(child) ? '; it exited: ' + child.stderr() : ''}`)
  return alive && reports.length === 0
}

/**
 * Starts a server from `fixture` (a module path relative to the repository
 * root, see fixtures/child.ts) in a child process, killed in teardown of `t`.
 * Several subtests may share it: each ends with `server.assertSurvived(t)`.
 */
export async function startHostileServer (t: Test, fixture: string): Promise<HostileServer> {
  const child = await spawnReady(t, `hostile server ${fixture}`, ['--unhandled-rejections=strict', '--import', 'tsx', CHILD, fixture])
  return {
    baseUrl: child.baseUrl,
    wsUrl: child.wsUrl,
    uncaught: () => reportsOf(child),
    assertSurvived: (t) => assertSurvived(t, child)
  }
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
