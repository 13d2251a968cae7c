// Targeted routing on real Redis, where subscriptions take a round trip:
// a group change resolves only once the member's server is subscribed, a
// request fails at once when no server has the connection, and a caller
// whose target server dies mid-call gets an error within clientResultTimeout.
import { Redis } from 'ioredis'
import t from 'tap'
import { startRedis } from '../helpers/redis.js'
import { spawnServers } from '../helpers/servers.js'
import type { AskOutcome } from '../fixtures/contract-hub.js'
import { connectPeer, expectDelivery, post, receives, within, WS_JSON, WS_MSGPACK } from './contract.js'

t.test('targeted routing on one Redis', async (t) => {
  const redis = await startRedis(t)
  const servers = await spawnServers(t, redis.port, ['q0', 'q1', 'q2'])

  t.test('a message sent right after groups.add returns reaches the new member, from any server', async (t) => {
    const peers = [
      await connectPeer(t, servers, { name: 'A', server: 0, cell: WS_JSON }),
      await connectPeer(t, servers, { name: 'B', server: 1, cell: WS_MSGPACK })
    ]
    const [A] = peers
    // Each group is new, so each add has to subscribe server 0 first.
    for (let i = 0; i < 10; i++) {
      const via = i % 3
      const sender = (i + 1) % 3
      await post(servers[via]!, '/groups', { id: A!.id, group: `fresh-${i}`, add: true })
      await expectDelivery(t, servers, peers, `fresh-${i}: added via ${servers[via]!.name}, sent from ${servers[sender]!.name}`,
        `to-fresh-${i}`, [A!], sender,
        () => post(servers[sender]!, '/broadcast', { selector: { kind: 'group', name: `fresh-${i}` }, payload: `to-fresh-${i}` }))
    }
    // Leave and join again at once: the unsubscription and the new subscription go out in order.
    await A!.conn.invoke('RemoveFromGroup', A!.id, 'fresh-0')
    await A!.conn.invoke('AddToGroup', A!.id, 'fresh-0')
    await expectDelivery(t, servers, peers, 'after leaving and joining again', 'rejoined', [A!], 2,
      () => post(servers[2]!, '/broadcast', { selector: { kind: 'group', name: 'fresh-0' }, payload: 'rejoined' }))
  })

  t.test('the connection\'s server dies: a call in progress ends within clientResultTimeout, later ones fail at once', async (t) => {
    const victims = await spawnServers(t, redis.port, ['doomed'])
    const all = [...servers, victims[0]!]
    const A = await connectPeer(t, all, { name: 'A', server: 0, cell: WS_JSON })
    const V = await connectPeer(t, all, { name: 'V', server: 3, cell: WS_JSON })
    // V never answers 'hang'; its server is killed while A's server waits for the result.
    V.conn.off('hang')
    const asked = new Promise<void>((resolve) => { V.conn.on('hang', () => { resolve(); return new Promise(() => {}) }) })
    const call = A.conn.invoke('Ask', V.id, 'hang', null) as Promise<AskOutcome>
    await within(asked, 'the call to reach V')
    victims[0]!.child.kill('SIGKILL')
    await victims[0]!.exited
    const outcome = await call
    t.same({ ok: outcome.ok, error: (outcome as { error?: string }).error },
      { ok: false, error: "Timed out after 1000 ms waiting for the client's result of 'hang'." },
      `the caller gets the timeout error (${outcome.ms} ms, clientResultTimeout 1000 ms)`)

    // Redis drops a dead server's subscriptions with its connections.
    const admin = new Redis({ port: redis.port, host: '127.0.0.1' })
    t.teardown(() => { admin.disconnect() })
    const channel = `signalr:contract:connection:${V.id}`
    for (let i = 0; i < 100; i++) {
      const [, count] = await admin.call('PUBSUB', 'NUMSUB', channel) as [string, number]
      if (count === 0) break
      await new Promise((resolve) => { setTimeout(resolve, 20) }) // polling Redis's view
    }
    const late = await A.conn.invoke('Ask', V.id, 'answer', null) as AskOutcome
    t.match(late, { ok: false, error: `Connection '${V.id}' does not exist.` }, 'a later call fails at once')
  })
})

t.test('routing: \'hub\' (the benchmark baseline) uses only the hub\'s all channel', async (t) => {
  const redis = await startRedis(t)
  const servers = await spawnServers(t, redis.port, ['h0', 'h1'], { env: { ROUTING: 'hub' } })
  const A = await connectPeer(t, servers, { name: 'A', server: 0, cell: WS_JSON, user: 'alice' })
  const B = await connectPeer(t, servers, { name: 'B', server: 1, cell: WS_JSON })
  await post(servers[1]!, '/groups', { id: A.id, group: 'red', add: true })
  const got = receives(A, 'hub-red')
  await post(servers[1]!, '/broadcast', { selector: { kind: 'group', name: 'red' }, payload: 'hub-red' })
  await within(got, 'the group message')
  const toB = receives(B, 'hub-client')
  await post(servers[0]!, '/broadcast', { selector: { kind: 'client', id: B.id }, payload: 'hub-client' })
  await within(toB, 'the client message')
  const admin = new Redis({ port: redis.port, host: '127.0.0.1' })
  t.teardown(() => { admin.disconnect() })
  const channels = (await admin.call('PUBSUB', 'CHANNELS') as string[]).sort()
  t.equal(channels.filter((c) => !c.startsWith('signalr:contract:internal:ack:')).join(), 'signalr:contract:all',
    'besides the ack channels, every server listens on the all channel only')
})
