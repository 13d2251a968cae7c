// createHubEmitter from a separate process (a worker with no connections), over Redis and NATS:
// clients on two servers receive what it sends, and its group changes and
// client results reach connections on either server.
import { spawn } from 'node:child_process'
import { fileURLToPath } from 'node:url'
import t from 'tap'
import type { Test } from 'tap'
import { startNats } from '../helpers/nats.js'
import { startRedis } from '../helpers/redis.js'
import { spawnServers, type ChildServer } from '../helpers/servers.js'
import { connectPeer, receives, within, WS_JSON, WS_MSGPACK } from './contract.js'

const ROOT = fileURLToPath(new URL('../..', import.meta.url))

function runChild (env: Record<string, string>): Promise<{ code: number | null, stdout: string, stderr: string }> {
  const child = spawn(process.execPath, ['--import', 'tsx', 'test/fixtures/emitter-child.ts'], {
    cwd: ROOT, env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'pipe']
  })
  const killOnExit = (): void => { child.kill('SIGKILL') }
  process.once('exit', killOnExit)
  let stdout = ''
  let stderr = ''
  child.stdout.setEncoding('utf8').on('data', (chunk: string) => { stdout += chunk })
  child.stderr.setEncoding('utf8').on('data', (chunk: string) => { stderr += chunk })
  return new Promise((resolve) => {
    child.once('exit', (code) => {
      process.off('exit', killOnExit)
      resolve({ code, stdout, stderr })
    })
  })
}

interface Engine {
  servers: ChildServer[]
  /** What the worker needs to reach the same engine. */
  env: Record<string, string>
}

const engines: Record<string, (t: Test) => Promise<Engine>> = {
  async redis (t) {
    const redis = await startRedis(t)
    return { servers: await spawnServers(t, redis.port, ['e0', 'e1']), env: { REDIS_PORT: String(redis.port) } }
  },
  async nats (t) {
    const nats = await startNats(t)
    const servers = await spawnServers(t, 0, ['e0', 'e1'],
      { path: 'test/fixtures/nats-scaleout-server.ts', env: { NATS_PORT: String(nats.port) } })
    return { servers, env: { NATS_PORT: String(nats.port) } }
  }
}

for (const [engine, start] of Object.entries(engines)) {
  t.test(`a worker process sends to hub clients through createHubEmitter (${engine})`, async (t) => {
    const { servers, env } = await start(t)
    const A = await connectPeer(t, servers, { name: 'A', server: 0, cell: WS_JSON, user: 'alice' })
    const B = await connectPeer(t, servers, { name: 'B', server: 1, cell: WS_MSGPACK })
    const fin = Promise.all([receives(A, 'emit-fin'), receives(B, 'emit-fin')])

    const { code, stdout, stderr } = await within(runChild({ ...env, A_ID: A.id, B_ID: B.id }),
      'the worker to finish and exit on its own', 30_000)
    t.equal(code, 0, `the worker exits on its own after close()${stderr === '' ? '' : `; stderr: ${stderr}`}`)
    const results = JSON.parse(stdout) as Record<string, unknown>
    t.same(results.add, { ok: true, value: null }, 'groups.add for a connection on a server')
    t.same(results.invoke, { ok: true, value: 'B:from-emitter' }, 'a client result from a connection on a server')
    t.same(results.unknown, { ok: false, error: "Connection 'no-such-connection' does not exist." }, 'an unknown connection fails at once')
    t.same(results.remove, { ok: true, value: null }, 'groups.remove')

    await within(fin, 'the last message')
    t.same(A.got, ['emit-group', 'emit-user', 'emit-all', 'emit-groups', 'emit-fin'],
      'A (group member, user alice) gets each message once, in order; nothing after its removal from the group')
    t.same(B.got, ['emit-client', 'emit-all', 'emit-all-except', 'emit-fin'], 'B gets client(id), all and allExcept')
  })
}
