import type { ChildProcess } from 'node:child_process'
import type { Test } from 'tap'
import { spawnNode } from './node-child.js'

const FIXTURE = 'test/fixtures/scaleout-server.ts'
/** Bound on a child's start (tsx compiles on first load); a bound, not a wait. */
const START_TIMEOUT_MS = 30_000
const READY = /^READY (\d+)$/

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
  const node = spawnNode(t, name, args, env)
  const ready = await node.line((l) => READY.test(l), 'READY', START_TIMEOUT_MS)
  const port = Number(READY.exec(ready)![1])
  return {
    name,
    port,
    baseUrl: `http://127.0.0.1:${port}`,
    wsUrl: `ws://127.0.0.1:${port}`,
    child: node.child,
    exited: node.exited,
    stderr: node.stderr
  }
}

/** Spawns several servers at once (their start-up is mostly compile time). */
export function spawnServers (t: Test, redisPort: number, names: string[], fixture?: FixtureSpec): Promise<ChildServer[]> {
  return Promise.all(names.map((name) => spawnServer(t, redisPort, name, fixture)))
}
