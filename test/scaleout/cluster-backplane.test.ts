// The cluster backplane on its own: this test process is the node:cluster
// primary (clusterPrimary()) and drives small workers that run only a backplane.
import cluster, { type Worker } from 'node:cluster'
import t, { type Test } from 'tap'
import { clusterBackplane, clusterPrimary, type ClusterPrimary } from '../../lib/cluster/index.js'
import { within } from './contract.js'

const FIXTURE = new URL('../fixtures/cluster-bus-worker.ts', import.meta.url).pathname

interface BusWorker {
  worker: Worker
  do<T = unknown> (cmd: string, fields?: { channel?: string, hex?: string, count?: number }): Promise<T>
}

let seq = 0

/** Forks a bus worker and resolves once it is up; disconnected (killed if it lingers) in teardown. */
async function fork (t: Test, env: Record<string, string> = {}): Promise<BusWorker> {
  cluster.setupPrimary({ exec: FIXTURE, execArgv: ['--import', 'tsx'] })
  const worker = cluster.fork(env)
  const waiting = new Map<number, { resolve: (v: unknown) => void, reject: (e: Error) => void }>()
  worker.on('message', (m: { seq?: number, result?: unknown, error?: string }) => {
    if (typeof m?.seq !== 'number') return
    const entry = waiting.get(m.seq)
    waiting.delete(m.seq)
    if (m.error !== undefined) entry?.reject(new Error(m.error))
    else entry?.resolve(m.result)
  })
  const up = new Promise((resolve, reject) => { waiting.set(0, { resolve, reject }) })
  const gone = new Promise<void>((resolve) => { worker.once('exit', () => { resolve() }) })
  t.teardown(async () => {
    // Disconnected, the worker exits by itself and writes its V8 coverage; a signal would lose it.
    if (worker.isConnected()) worker.disconnect()
    await Promise.race([gone, new Promise((resolve) => { setTimeout(resolve, 5000).unref() })])
    if (!worker.isDead()) worker.process.kill('SIGKILL')
    await gone
  })
  await within(Promise.race([up, gone.then(() => { throw new Error('the bus worker exited before it was up') })]), 'the bus worker', 30_000)
  return {
    worker,
    do<T> (cmd: string, fields = {}) {
      const id = ++seq
      return within(new Promise<T>((resolve, reject) => {
        waiting.set(id, { resolve: resolve as (v: unknown) => void, reject })
        worker.send({ cmd, seq: id, ...fields })
      }), `${cmd} on worker ${worker.id}`)
    }
  }
}

const hex = (text: string): string => Buffer.from(text, 'utf8').toString('hex')
const ALL_BYTES = Buffer.from(Array.from({ length: 256 }, (_, i) => i)).toString('hex')

t.test('outside node:cluster the two halves refuse to start', async (t) => {
  t.throws(() => clusterBackplane(), /runs in a node:cluster worker/)
})

t.test('a primary and its workers', async (t) => {
  const primary: ClusterPrimary = clusterPrimary()
  t.teardown(() => { primary.close() })
  t.throws(() => clusterPrimary(), /already running/, 'a second relay in the same primary is refused (it would deliver twice)')
  const [a, b, c] = await Promise.all([fork(t), fork(t), fork(t)])
  t.ok(Buffer.isBuffer(await a.do('serialization')), 'clusterPrimary() switched the workers to advanced serialization (a Buffer crosses IPC as one)')
  await t.rejects(a.do('primaryHere'), /runs in the node:cluster primary/, 'clusterPrimary() in a worker throws')

  t.test('publishCounted counts the subscribed workers; only they receive', async (t) => {
    t.equal(await a.do('publishCounted', { channel: 'hub:group:g', hex: hex('nobody') }), 0, 'nobody subscribed: 0')
    await b.do('subscribe', { channel: 'hub:group:g' })
    t.equal(primary.subscribers('hub:group:g'), 1)
    t.equal(await a.do('publishCounted', { channel: 'hub:group:g', hex: hex('one') }), 1)
    await c.do('subscribe', { channel: 'hub:group:g' })
    await a.do('subscribe', { channel: 'hub:group:g' })
    t.equal(await a.do('publishCounted', { channel: 'hub:group:g', hex: hex('three') }), 3, 'the publisher counts too when it is subscribed')
    a.do('publish', { channel: 'hub:group:other', hex: hex('elsewhere') }).catch(() => {})
    await b.do('unsubscribe', { channel: 'hub:group:g' })
    t.equal(await a.do('publishCounted', { channel: 'hub:group:g', hex: hex('two') }), 2, 'after an unsubscribe')
    // The counted publications were acknowledged after the relay, and IPC keeps order per worker.
    await Promise.all([b, c].map((w) => w.do('stats')))
    t.same((await b.do<Record<string, string[]>>('received'))['hub:group:g'], [hex('one'), hex('three')], 'b got what was sent while it was subscribed')
    t.same((await c.do<Record<string, string[]>>('received'))['hub:group:g'], [hex('three'), hex('two')])
    t.equal((await c.do<Record<string, string[]>>('received'))['hub:group:other'], undefined, 'nobody got the unsubscribed channel')
    const stats = await a.do<{ published: number, received: number, dropped: number }>('stats')
    t.match(stats, { published: 5, received: 2, dropped: 0 }, 'the publisher\'s counters')
  })

  t.test('any channel name and any bytes pass unchanged, also to a worker on the JSON channel', async (t) => {
    cluster.setupPrimary({ serialization: 'json' })
    const d = await fork(t)
    cluster.setupPrimary({ serialization: 'advanced' })
    t.notOk(Buffer.isBuffer(await d.do('serialization')), 'this worker\'s channel is JSON')
    const channel = 'grüße :*> .\t%'
    await d.do('subscribe', { channel })
    await a.do('subscribe', { channel })
    t.equal(await a.do('publishCounted', { channel, hex: ALL_BYTES }), 2, 'from an advanced worker')
    t.equal(await d.do('publishCounted', { channel, hex: ALL_BYTES }), 2, 'from a JSON worker')
    await d.do('stats')
    t.same((await d.do<Record<string, string[]>>('received'))[channel], [ALL_BYTES, ALL_BYTES], 'the JSON worker got every byte value, twice')
    t.same((await a.do<Record<string, string[]>>('received'))[channel], [ALL_BYTES, ALL_BYTES], 'and so did the advanced one')
  })

  t.test('a handler that throws costs only its own message', async (t) => {
    const g = await fork(t)
    await g.do('subscribeFragile', { channel: 'hub:fragile' })
    t.equal(await a.do('publishCounted', { channel: 'hub:fragile', hex: hex('boom') }), 1)
    t.equal(await a.do('publishCounted', { channel: 'hub:fragile', hex: hex('after') }), 1)
    await g.do('stats')
    t.same((await g.do<Record<string, string[]>>('received'))['hub:fragile'], [hex('after')], 'the next message is handled')
    t.match(await g.do('stats'), { received: 2 }, 'both were received; the worker is still up')
  })

  t.test('a worker that dies loses its subscriptions at the primary', async (t) => {
    const e = await fork(t)
    await e.do('subscribe', { channel: 'hub:group:g' })
    await e.do('subscribe', { channel: 'hub:connection:e1' })
    t.same(primary.channelsOf(e.worker.id).sort(), ['hub:connection:e1', 'hub:group:g'])
    const before = primary.subscribers('hub:group:g')
    const exited = new Promise<void>((resolve) => { cluster.once('exit', () => { resolve() }) })
    e.worker.process.kill('SIGKILL')
    await within(exited, 'the worker to exit')
    t.same(primary.channelsOf(e.worker.id), [], 'nothing left for the dead worker')
    t.equal(primary.subscribers('hub:group:g'), before - 1)
    t.equal(await a.do('publishCounted', { channel: 'hub:connection:e1', hex: hex('gone') }), 0,
      'a publication for its connection reaches nobody (0), at once')
  })

  t.test('without a primary relaying, requests fail within the timeout instead of hanging', async (t) => {
    const f = await fork(t, { REQUEST_TIMEOUT: '300' })
    primary.close()
    await t.rejects(f.do('subscribe', { channel: 'x' }), /did not answer within 300 ms \(does it run clusterPrimary\(\)\?\)/)
    t.equal(await f.do('unsubscribe', { channel: 'never-subscribed' }), null,
      'unsubscribing a channel never subscribed resolves without asking the primary')
  })
})

t.test('bounded IPC queues: a burst beyond them is dropped and counted, never lost unseen', async (t) => {
  // One message in flight per worker at the primary; one at the `tight` worker, the default at `loose`.
  const primary = clusterPrimary({ maxPendingPerWorker: 1 })
  t.teardown(() => { primary.close() })
  const [tight, loose, subscriber] = await Promise.all([fork(t, { MAX_PENDING: '1' }), fork(t), fork(t)])
  await subscriber.do('subscribe', { channel: 'hub:burst' })
  const burst = 200
  const fromTight = await tight.do<{ published: number, dropped: number }>('publishMany', { channel: 'hub:burst', count: burst })
  t.equal(fromTight.published + fromTight.dropped, burst, 'the tight worker sent or counted as dropped every one')
  t.ok(fromTight.dropped > 0, `its queue of one overflowed in a synchronous burst (${fromTight.dropped} dropped)`)
  const fromLoose = await loose.do<{ published: number, dropped: number }>('publishMany', { channel: 'hub:burst', count: burst })
  t.same([fromLoose.published, fromLoose.dropped], [burst, 0], 'the loose worker sent them all')

  const until = async (condition: () => Promise<boolean>, what: string): Promise<void> => {
    await within((async () => { while (!await condition()) await new Promise((resolve) => { setTimeout(resolve, 20) }) })(), what)
  }
  const sent = fromTight.published + fromLoose.published
  await until(async () => primary.stats.received >= sent, 'the primary to receive what was sent')
  t.equal(primary.stats.received, sent, 'the primary received every message sent')
  t.equal(primary.stats.relayed + primary.stats.dropped, sent, 'and relayed or counted as dropped each')
  t.ok(primary.stats.dropped > 0, `its queue of one to the subscriber overflowed (${primary.stats.dropped} dropped)`)
  await until(async () => (await subscriber.do<{ received: number }>('stats')).received >= primary.stats.relayed, 'the relayed messages to arrive')
  const got = (await subscriber.do<Record<string, string[]>>('received'))['hub:burst']!
  t.equal(got.length, primary.stats.relayed, 'the subscriber got exactly what was relayed')
})
