import { spawn } from 'node:child_process'
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import type { Test } from 'tap'
import { firstLineStartsWith, startDaemon, type Daemon } from './daemon.js'

export interface RedisServer extends Daemon {
  /** redis://127.0.0.1:PORT */
  readonly url: string
}

const POLL_MS = 20

/**
 * Starts a private redis-server on a free loopback port (never the machine's
 * shared 6379), with persistence off, and kills it by PID in teardown;
 * `restart()` brings it back on the same port once it answers PING again.
 */
export async function startRedis (t: Test, extra: (port: number) => readonly string[] = () => []): Promise<RedisServer> {
  const daemon = await startDaemon(t, {
    name: 'redis-server',
    command: 'redis-server',
    args: (port) => [
      '--port', String(port),
      '--bind', '127.0.0.1',
      '--save', '',
      '--appendonly', 'no',
      '--daemonize', 'no',
      ...extra(port)
    ],
    ready: (port) => firstLineStartsWith(port, '+PONG', 'PING\r\n')
  })
  return Object.assign(daemon, { url: `redis://127.0.0.1:${daemon.port}` })
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
