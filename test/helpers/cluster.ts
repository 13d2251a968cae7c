import type { Test } from 'tap'
import { spawnNode } from './node-child.js'

const FIXTURE = 'test/fixtures/cluster-scaleout-server.ts'
/** Bound on the primary and its workers starting (tsx compiles in each); a bound, not a wait. */
const START_TIMEOUT_MS = 60_000

export interface ClusterWorker {
  readonly name: string
  readonly pid: number
  /** The worker's own port: http://127.0.0.1:PORT */
  readonly baseUrl: string
  readonly wsUrl: string
}

export interface ClusterApp {
  /** In fork order: w0, w1, … */
  readonly workers: ClusterWorker[]
  /** The port every worker shares (node:cluster round-robin). */
  readonly shared: { baseUrl: string, wsUrl: string }
  /** Resolves once the primary reports that `name` has exited. */
  exited (name: string): Promise<void>
  stderr (): string
}

/**
 * Spawns test/fixtures/cluster-scaleout-server.ts: a node:cluster primary with
 * `workers` workers on the cluster backplane. The primary is killed by PID in
 * teardown; its workers exit when their IPC channel to it closes.
 */
export async function spawnCluster (t: Test, workers = 4): Promise<ClusterApp> {
  const node = spawnNode(t, 'the cluster primary', ['--import', 'tsx', FIXTURE], { WORKERS: String(workers) })
  await node.line((l) => l === 'READY', 'READY', START_TIMEOUT_MS)
  const started = node.lines().filter((l) => l.startsWith('WORKER ')).map((l) => l.split(' '))
    .map(([, name, port, shared, pid]) => ({ name: name!, port: Number(port), shared: Number(shared), pid: Number(pid) }))
    .sort((a, b) => a.name.localeCompare(b.name))
  const sharedPort = started[0]!.shared
  return {
    workers: started.map((w) => ({ name: w.name, pid: w.pid, baseUrl: `http://127.0.0.1:${w.port}`, wsUrl: `ws://127.0.0.1:${w.port}` })),
    shared: { baseUrl: `http://127.0.0.1:${sharedPort}`, wsUrl: `ws://127.0.0.1:${sharedPort}` },
    exited: async (name) => { await node.line((l) => l === `EXIT ${name}`, `EXIT ${name}`) },
    stderr: node.stderr
  }
}
