import { spawn } from 'node:child_process'
import { fileURLToPath } from 'node:url'
import type { Test } from 'tap'

const ROOT = fileURLToPath(new URL('../..', import.meta.url))
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
  const child = spawn(process.execPath, ['--import', 'tsx', FIXTURE], {
    cwd: ROOT,
    env: { ...process.env, WORKERS: String(workers) },
    stdio: ['pipe', 'pipe', 'pipe']
  })
  const killOnExit = (): void => { child.kill('SIGKILL') }
  process.once('exit', killOnExit)
  const gone = new Promise<void>((resolve) => { child.once('exit', () => { resolve() }) })
  t.teardown(async () => {
    process.off('exit', killOnExit)
    if (child.exitCode === null && child.signalCode === null) process.kill(child.pid!, 'SIGKILL')
    await gone
  })

  let stderr = ''
  child.stderr!.setEncoding('utf8').on('data', (chunk: string) => { stderr = (stderr + chunk).slice(-8000) })
  const lines: string[] = []
  const listeners = new Set<() => void>()
  let buffered = ''
  child.stdout!.setEncoding('utf8').on('data', (chunk: string) => {
    buffered += chunk
    const complete = buffered.split('\n')
    buffered = complete.pop()!
    lines.push(...complete)
    for (const listener of [...listeners]) listener()
  })
  const line = (match: (l: string) => boolean, what: string, bound?: number): Promise<string> => new Promise((resolve, reject) => {
    const check = (): void => {
      const found = lines.find(match)
      if (found === undefined) return
      listeners.delete(check)
      clearTimeout(timer)
      resolve(found)
    }
    const timer = bound === undefined ? undefined : setTimeout(() => { listeners.delete(check); reject(new Error(`no ${what} within ${bound} ms; stderr: ${stderr}`)) }, bound)
    listeners.add(check)
    check()
  })

  await Promise.race([
    line((l) => l === 'READY', 'READY', START_TIMEOUT_MS),
    gone.then(() => { throw new Error(`the cluster primary exited before READY; stderr: ${stderr}`) })
  ])
  const started = lines.filter((l) => l.startsWith('WORKER ')).map((l) => l.split(' '))
    .map(([, name, port, shared, pid]) => ({ name: name!, port: Number(port), shared: Number(shared), pid: Number(pid) }))
    .sort((a, b) => a.name.localeCompare(b.name))
  const sharedPort = started[0]!.shared
  return {
    workers: started.map((w) => ({ name: w.name, pid: w.pid, baseUrl: `http://127.0.0.1:${w.port}`, wsUrl: `ws://127.0.0.1:${w.port}` })),
    shared: { baseUrl: `http://127.0.0.1:${sharedPort}`, wsUrl: `ws://127.0.0.1:${sharedPort}` },
    exited: async (name) => { await line((l) => l === `EXIT ${name}`, `EXIT ${name}`) },
    stderr: () => stderr
  }
}
