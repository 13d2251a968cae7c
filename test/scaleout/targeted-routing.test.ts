// Targeted routing on the in-process memory bus, where the bus itself can be
// inspected: who subscribes to what, who receives what, and what a server
// does with payloads that are not its own envelopes.
import { Writable } from 'node:stream'
import { MeterProvider, MetricReader } from '@opentelemetry/sdk-metrics'
import { Packr } from 'msgpackr'
import t, { type Test } from 'tap'
import { MemoryBus, memoryBackplane } from '../../lib/index.js'
import type { Backplane } from '../../lib/backplane/backplane.js'
import { contractOptions, mountContract } from '../fixtures/contract-hub.js'
import { startApp } from '../helpers/app.js'
import { connectPeer, expectDelivery, post, within, WS_JSON, WS_MSGPACK, type ClusterServer, type Peer } from './contract.js'

class TestReader extends MetricReader {
  protected async onShutdown (): Promise<void> {}
  protected async onForceFlush (): Promise<void> {}
}

interface Server extends ClusterServer {
  readonly backplane: Backplane
  /** Channels this server published on, in order. */
  readonly published: string[]
  /** Its origin id, read off the ack channel it subscribed. */
  readonly origin: Buffer
  readonly logs: string[]
  /** Resolves when this server unsubscribes from `channel`. */
  unsubscribed (channel: string): Promise<void>
  metric (name: string): Promise<number | undefined>
}

/** Three servers on one bus, started one after another so each one's ack channel is known. */
async function threeServers (t: Test, bus: MemoryBus): Promise<Server[]> {
  const servers: Server[] = []
  for (const name of ['t0', 't1', 't2']) {
    const inner = memoryBackplane(bus)
    const published: string[] = []
    const waiting = new Map<string, () => void>()
    // Records where the server publishes and what it leaves; the bus underneath is the real one.
    const backplane = {
      ...inner,
      async unsubscribe (channel: string) {
        await inner.unsubscribe(channel)
        waiting.get(channel)?.()
      },
      publish (channel: string, payload: Buffer) { published.push(channel); inner.publish(channel, payload) },
      async publishCounted (channel: string, payload: Buffer) { published.push(channel); return await inner.publishCounted(channel, payload) }
    }
    const logs: string[] = []
    const stream = new Writable({ write (chunk: Buffer, _encoding, callback) { logs.push(chunk.toString('utf8')); callback() } })
    const reader = new TestReader()
    const before = new Set(bus.subscribers.keys())
    const { baseUrl, wsUrl } = await startApp(t, (app) => { mountContract(app, name) },
      { ...contractOptions, backplane, telemetry: { meterProvider: new MeterProvider({ readers: [reader] }) } },
      { logger: { level: 'warn', stream } })
    const ack = [...bus.subscribers.keys()].find((c) => !before.has(c) && c.startsWith('contract:internal:ack:'))!
    servers.push({
      name,
      baseUrl,
      wsUrl,
      backplane,
      published,
      origin: Buffer.from(ack.slice('contract:internal:ack:'.length), 'base64url'),
      logs,
      unsubscribed: (channel) => new Promise<void>((resolve) => { waiting.set(channel, resolve) }),
      async metric (metricName) {
        const { resourceMetrics } = await reader.collect()
        for (const scope of resourceMetrics.scopeMetrics) {
          for (const metric of scope.metrics) {
            if (metric.descriptor.name === metricName) return metric.dataPoints[0]?.value as number | undefined
          }
        }
        return undefined
      }
    })
  }
  return servers
}

function subscribers (bus: MemoryBus, channel: string): number {
  return bus.subscribers.get(channel)?.size ?? 0
}

t.test('a server subscribes to a group, user or connection channel only while it has a local member', async (t) => {
  const bus = new MemoryBus()
  const servers = await threeServers(t, bus)
  const A = await connectPeer(t, servers, { name: 'A', server: 0, cell: WS_JSON, user: 'alice' })
  const B = await connectPeer(t, servers, { name: 'B', server: 0, cell: WS_MSGPACK, user: 'alice' })
  const C = await connectPeer(t, servers, { name: 'C', server: 1, cell: WS_JSON, user: 'alice' })

  t.equal(subscribers(bus, `contract:connection:${A.id}`), 1, 'its own server subscribes to a connection\'s channel')
  t.equal(subscribers(bus, 'contract:user:alice'), 2, 'a user on two servers: one subscription per server, not per connection')
  t.equal(subscribers(bus, 'contract:all'), 3, 'every server subscribes to the all channel')

  const group = async (via: number, who: Peer, add: boolean): Promise<void> => {
    await post(servers[via]!, '/groups', { id: who.id, group: 'red', add })
  }
  t.equal(subscribers(bus, 'contract:group:red'), 0, 'nobody subscribes to a group without members')
  await group(2, A, true)
  t.equal(subscribers(bus, 'contract:group:red'), 1, 'the first member subscribes its server')
  await group(1, B, true)
  t.equal(subscribers(bus, 'contract:group:red'), 1, 'a second member on the same server adds no subscription')
  await group(0, C, true)
  t.equal(subscribers(bus, 'contract:group:red'), 2)
  await group(2, A, false)
  t.equal(subscribers(bus, 'contract:group:red'), 2, 'one member of two left: still subscribed')
  await group(2, B, false)
  t.equal(subscribers(bus, 'contract:group:red'), 1, 'the last local member leaves: unsubscribed')

  let left = servers[0]!.unsubscribed(`contract:connection:${B.id}`)
  await B.conn.stop()
  await within(left, 'server 0 to unsubscribe B\'s channel')
  t.equal(subscribers(bus, `contract:connection:${B.id}`), 0, 'a closed connection\'s channel is unsubscribed')
  t.equal(subscribers(bus, 'contract:user:alice'), 2, 'the user still has A on server 0')
  left = servers[1]!.unsubscribed('contract:group:red')
  await C.conn.stop()
  await within(left, 'server 1 to unsubscribe the group')
  t.equal(subscribers(bus, 'contract:group:red'), 0, 'a member that disconnects releases its groups')
  t.equal(subscribers(bus, 'contract:user:alice'), 1)
})

t.test('a server receives only what is meant for its connections', async (t) => {
  const bus = new MemoryBus()
  const servers = await threeServers(t, bus)
  const peers = [
    await connectPeer(t, servers, { name: 'A', server: 0, cell: WS_JSON, user: 'alice' }),
    await connectPeer(t, servers, { name: 'C', server: 1, cell: WS_JSON, user: 'bob' }),
    await connectPeer(t, servers, { name: 'E', server: 2, cell: WS_JSON })
  ]
  const [A, C] = peers as [Peer, Peer, Peer]
  await post(servers[1]!, '/groups', { id: A.id, group: 'red', add: true })
  const idle = servers[2]!.backplane.stats
  const before = idle.received
  for (let i = 0; i < 20; i++) {
    await expectDelivery(t, servers, peers, `group ${i}`, `red-${i}`, [A], 1,
      () => post(servers[1]!, '/broadcast', { selector: { kind: 'group', name: 'red' }, payload: `red-${i}` }))
  }
  await expectDelivery(t, servers, peers, 'user', 'to-bob', [C], 0,
    () => post(servers[0]!, '/broadcast', { selector: { kind: 'user', id: 'bob' }, payload: 'to-bob' }))
  await expectDelivery(t, servers, peers, 'client', 'to-A', [A], 1,
    () => post(servers[1]!, '/broadcast', { selector: { kind: 'client', id: A.id }, payload: 'to-A' }))
  // Server 2 received the 22 barriers (all channel) and nothing else.
  t.equal(idle.received - before, 22, 'the server without receivers got none of the 22 targeted messages')
})

t.test('past the fan-out limit a multi-target send goes once to the all channel, still one copy each', async (t) => {
  const bus = new MemoryBus()
  const servers = await threeServers(t, bus)
  const peers = [
    await connectPeer(t, servers, { name: 'A', server: 0, cell: WS_JSON }),
    await connectPeer(t, servers, { name: 'C', server: 1, cell: WS_MSGPACK }),
    await connectPeer(t, servers, { name: 'E', server: 2, cell: WS_JSON })
  ]
  const [A, C, E] = peers as [Peer, Peer, Peer]
  const names = Array.from({ length: 20 }, (_, i) => `g${i}`)
  for (const name of names) await post(servers[0]!, '/groups', { id: C.id, group: name, add: true })
  await post(servers[1]!, '/groups', { id: A.id, group: 'g7', add: true })
  const sender = servers[2]!
  sender.published.length = 0
  await expectDelivery(t, servers, peers, 'groups (20)', 'many', [A, C], 2,
    () => post(sender, '/broadcast', { selector: { kind: 'groups', names }, payload: 'many' }))
  t.same(sender.published, ['contract:all', 'contract:all'], 'one publication on the all channel (then the barrier)')
  sender.published.length = 0
  await expectDelivery(t, servers, peers, 'groups (3)', 'few', [A, C], 2,
    () => post(sender, '/broadcast', { selector: { kind: 'groups', names: ['g0', 'g7', 'g1'] }, payload: 'few' }))
  t.same(sender.published, ['contract:group:g0', 'contract:group:g7', 'contract:group:g1', 'contract:all'], 'below it, one per group channel')
  sender.published.length = 0
  const ids = [A.id, C.id, ...Array.from({ length: 20 }, (_, i) => `nobody-${i}`)]
  await expectDelivery(t, servers, peers, 'clients (23)', 'many-ids', [A, C, E], 2,
    () => post(sender, '/broadcast', { selector: { kind: 'clients', ids: [...ids, E.id] }, payload: 'many-ids' }))
  t.same(sender.published, ['contract:all', 'contract:all'], 'clients past the limit: the all channel')
})

t.test('payloads that are not valid envelopes are counted and logged, never a crash; a server ignores its own without decoding', async (t) => {
  const bus = new MemoryBus()
  const servers = await threeServers(t, bus)
  const peers = [
    await connectPeer(t, servers, { name: 'A', server: 0, cell: WS_JSON }),
    await connectPeer(t, servers, { name: 'C', server: 1, cell: WS_JSON })
  ]
  const outsider = memoryBackplane(bus)
  const packr = new Packr({ useRecords: false })
  const foreign = Buffer.alloc(16, 7)
  const bad: Buffer[] = [
    Buffer.from('short'),
    Buffer.concat([foreign, Buffer.from([0xc1])]), // never valid MessagePack
    Buffer.concat([foreign, packr.pack({ not: 'an array' })]),
    Buffer.concat([foreign, packr.pack([9, 'unknown kind'])]),
    Buffer.concat([foreign, packr.pack([1, { kind: 'everyone' }, Buffer.from('{}'), Buffer.from([1])])]),
    Buffer.concat([foreign, packr.pack([1, { kind: 'all', exclude: [1, 2] }, Buffer.from('{}'), Buffer.from([1])])]),
    Buffer.concat([foreign, packr.pack([2, 'r', 'c', 'g'])]),
    Buffer.concat([foreign, packr.pack([4, 'r', true, null])]) // a reply, on a hub channel
  ]
  for (const payload of bad) outsider.publish('contract:all', payload)
  // Garbage with server 0's own header: server 0 drops it unread, the others count it.
  outsider.publish('contract:all', Buffer.concat([servers[0]!.origin, Buffer.from([0xc1, 0xc1])]))
  // And garbage on an ack channel.
  const ack = [...bus.subscribers.keys()].find((c) => c.startsWith('contract:internal:ack:') &&
    c.endsWith(servers[1]!.origin.toString('base64url')))!
  outsider.publish(ack, Buffer.concat([foreign, packr.pack([1, { kind: 'all' }, Buffer.from('{}'), Buffer.from([1])])]))

  // The servers still work, and everything published before has been handled by now.
  await expectDelivery(t, servers, peers, 'all after the garbage', 'still-fine', peers, 0,
    () => post(servers[0]!, '/broadcast', { selector: { kind: 'all' }, payload: 'still-fine' }))
  t.same(await Promise.all(servers.map((s) => s.metric('signalr.backplane.malformed'))), [8, 10, 9],
    'each malformed payload counted once where it arrived (signalr.backplane.malformed); server 0 never read its own')
  const warnings = servers.map((s) => s.logs.filter((line) => line.includes('ignoring a malformed backplane message')).length)
  t.same(warnings, [1, 1, 1], 'logged once per server within the rate limit')
  t.match(JSON.parse(servers[1]!.logs.find((l) => l.includes('malformed'))!), { reason: 'shorter than its header' })
  t.equal(await servers[0]!.metric('signalr.backplane.received'), servers[0]!.backplane.stats.received, 'signalr.backplane.received')
  t.ok((await servers[0]!.metric('signalr.backplane.published'))! > 0, 'signalr.backplane.published')
  t.equal(await servers[0]!.metric('signalr.backplane.dropped'), 0, 'signalr.backplane.dropped')
  // Server 0 received the 9 garbage payloads and its own barrier; it decoded the 8 foreign ones only.
  t.equal(await servers[0]!.metric('signalr.backplane.decoded'), 8, 'signalr.backplane.decoded: its own publications are not decoded')
})
