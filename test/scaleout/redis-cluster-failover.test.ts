// One master of a 3-master Redis Cluster (no replicas) killed under light
// load, then restarted with its node file. Two apps in this process, so the
// backplanes' counters can be read directly.
import { Writable } from 'node:stream'
import { Cluster, Redis } from 'ioredis'
import t, { type Test } from 'tap'
import { redisBackplane } from '../../lib/redis/index.js'
import { contractOptions, mountContract } from '../fixtures/contract-hub.js'
import { startApp } from '../helpers/app.js'
import { startRedisCluster, waitForClusterOk } from '../helpers/redis.js'
import { connectPeer, within, WS_JSON } from './contract.js'

const TICK_MS = 10
const RECOVERY_BOUND_MS = 30_000

async function startServer (t: Test, ports: readonly number[], name: string, logs: string[]) {
  const redis = new Cluster(ports.map((port) => ({ host: '127.0.0.1', port })))
  redis.on('error', () => {})
  t.teardown(() => { redis.disconnect() })
  const backplane = redisBackplane({ redis })
  const stream = new Writable({ write (chunk: Buffer, _encoding, callback) { logs.push(chunk.toString('utf8')); callback() } })
  let hub!: ReturnType<typeof mountContract>
  const started = await startApp(t, (app) => { hub = mountContract(app, name) }, { ...contractOptions, backplane }, { logger: { level: 'warn', stream } })
  return { name, baseUrl: started.baseUrl, wsUrl: started.wsUrl, backplane, clients: started.app.signalr.hubContext(hub).clients, groups: started.app.signalr.hubContext(hub).groups }
}

function indices (got: unknown[], prefix: string): number[] {
  return got.filter((m): m is string => typeof m === 'string' && m.startsWith(prefix)).map((m) => Number(m.slice(prefix.length)))
}

t.test('a master killed under load: its shard\'s channels stop, the other shards go on; it comes back', async (t) => {
  const unhandled: unknown[] = []
  const onUnhandled = (reason: unknown): void => { unhandled.push(reason) }
  process.on('unhandledRejection', onUnhandled)
  t.teardown(() => { process.off('unhandledRejection', onUnhandled) })

  const cluster = await startRedisCluster(t)
  const admin = new Redis({ port: cluster.ports[0]!, host: '127.0.0.1' })
  t.teardown(() => { admin.disconnect() })
  const ranges = await admin.cluster('SLOTS') as unknown as Array<[number, number, [string, number, ...unknown[]]]>
  const ownerOf = async (channel: string): Promise<number> => {
    const slot = await admin.cluster('KEYSLOT', channel)
    return cluster.ports.indexOf(ranges.find(([from, to]) => slot >= from && slot <= to)![2][1])
  }
  // The victim owns the all channel; the group is on another master.
  const victim = await ownerOf('signalr:contract:all')
  let group = ''
  for (let i = 0; group === ''; i++) if (await ownerOf(`signalr:contract:group:g${i}`) !== victim) group = `g${i}`
  t.comment(`killing master ${victim} (port ${cluster.ports[victim]}); group ${group} lives elsewhere`)

  const logs: string[] = []
  const s1 = await startServer(t, cluster.ports, 'f1', logs)
  const s2 = await startServer(t, cluster.ports, 'f2', logs)
  const servers = [s1, s2]
  const c1 = await connectPeer(t, servers, { name: 'c1', server: 0, cell: WS_JSON })
  await s2.groups.add(c1.id, group)

  // s2 sends to all (victim's shard) and to the group (a surviving shard) every tick; c1 is on s1.
  let sent = 0
  const sendErrors: unknown[] = []
  const tickWaiters = new Set<() => void>()
  const timer = setInterval(() => {
    const n = sent++
    s2.clients.all.send('Msg', `all-${n}`).catch((err: unknown) => { sendErrors.push(err) })
    s2.clients.group(group).send('Msg', `grp-${n}`).catch((err: unknown) => { sendErrors.push(err) })
    for (const waiter of [...tickWaiters]) waiter()
  }, TICK_MS)
  t.teardown(() => { clearInterval(timer) })
  const untilTick = (condition: () => boolean, what: string, bound?: number): Promise<void> => within(new Promise<void>((resolve) => {
    const check = (): void => { if (condition()) { tickWaiters.delete(check); resolve() } }
    tickWaiters.add(check)
  }), what, bound)
  const after = (prefix: string, index: number): boolean => indices(c1.got, prefix).some((i) => i >= index)

  await untilTick(() => after('all-', 20) && after('grp-', 20), 'both channels before the kill')
  t.same([s1.backplane.droppedMessages, s2.backplane.droppedMessages], [0, 0], 'nothing dropped while the cluster is whole')
  const killedAt = sent
  await cluster.nodes[victim]!.stop()

  await untilTick(() => s2.backplane.droppedMessages > 0, 'the publisher to count drops for the dead shard', RECOVERY_BOUND_MS)
  const dropMark = sent
  await untilTick(() => after('grp-', dropMark), 'the group on a surviving shard to keep delivering', RECOVERY_BOUND_MS)
  t.pass('sends on the surviving shards still cross servers while a master is down')
  t.ok(!after('all-', dropMark), 'sends on the dead shard\'s channel do not')

  // Let the cluster notice (node timeout 1 s): the survivors flag the master as failed and,
  // with no replica to promote, its slots go unserved; the other shards keep serving.
  const survivor = new Redis({ port: cluster.ports[(victim + 1) % 3]!, host: '127.0.0.1' })
  t.teardown(() => { survivor.disconnect() })
  const failed = async (): Promise<boolean> => {
    const nodes = await survivor.cluster('NODES') as string
    return nodes.split('\n').some((line) => line.includes(`:${cluster.ports[victim]}@`) && /\bfail\b/.test(line))
  }
  let flagged = false
  await untilTick(() => {
    void failed().then((f) => { flagged ||= f })
    return flagged
  }, 'the cluster to flag the master as failed', RECOVERY_BOUND_MS)
  const failMark = sent
  await untilTick(() => after('grp-', failMark), 'the group to deliver with the master flagged as failed', RECOVERY_BOUND_MS)
  t.pass('with the master flagged as failed, the other shards still carry messages')
  t.ok(!after('all-', dropMark), 'and the failed shard\'s channel still carries none')

  await cluster.nodes[victim]!.restart()
  await waitForClusterOk(cluster.ports[victim]!)
  const restartMark = sent
  await untilTick(() => after('all-', restartMark) && after('grp-', restartMark), 'the restarted shard to carry messages again', RECOVERY_BOUND_MS)
  t.pass('once the master is back, its channels carry messages again')
  clearInterval(timer)

  const all = indices(c1.got, 'all-')
  const grp = indices(c1.got, 'grp-')
  t.ok(all.every((v, i) => i === 0 || v > all[i - 1]!), 'what arrived on the all channel arrived once and in order')
  t.ok(grp.every((v, i) => i === 0 || v > grp[i - 1]!), 'what arrived on the group channel arrived once and in order')
  t.ok(sent - all.length >= s2.backplane.droppedMessages, 'every drop counted is a message missing at c1, nothing delivered twice')
  t.same(sendErrors, [], 'no send rejected')
  t.same(unhandled, [], 'no unhandled rejection')
  t.comment(`cluster failover: ${JSON.stringify({
    sent,
killedAt,
allReceived: all.length,
groupReceived: grp.length,
    dropped: [s1.backplane.droppedMessages, s2.backplane.droppedMessages],
    subscriberGaps: [s1.backplane.subscriberGaps, s2.backplane.subscriberGaps]
  })}`)
})
