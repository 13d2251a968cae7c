import t from 'tap'
import { z } from 'zod'
import { defineHub } from '../../lib/index.js'
import type { HubConnection as ServerConnection } from '../../lib/connection/connection.js'
import { InvocationContext } from '../../lib/hub/caller-context.js'
import { LocalLifetimeManager } from '../../lib/lifetime/local.js'
import { startApp } from '../helpers/app.js'
import { expectDelivery, peer, type Peer } from '../helpers/peers.js'

/**
 * White-box view of the server: each connection (to wait for its disconnect to
 * be fully processed) and the hub's in-memory lifetime manager (to check that
 * no empty group is left behind).
 */
interface Probe {
  connections: Map<string, ServerConnection>
  lifetime: LocalLifetimeManager | null
}

function newProbe (): Probe {
  return { connections: new Map(), lifetime: null }
}

function record (probe: Probe, hub: unknown): void {
  if (!(hub instanceof InvocationContext)) throw new Error('expected the internal InvocationContext')
  const lifetime = hub.connection.runtime.lifetime
  if (!(lifetime instanceof LocalLifetimeManager)) throw new Error('expected the in-memory lifetime manager')
  probe.lifetime = lifetime
  probe.connections.set(hub.connectionId, hub.connection as ServerConnection)
}

function makeHub (probe: Probe) {
  return defineHub({
    methods: {
      WhoAmI: { args: [], handler: (hub) => hub.connectionId },
      ToAll: { args: [z.string()], async handler (hub, m) { await hub.clients.all.send('Msg', m) } },
      ToGroup: { args: [z.string(), z.string()], async handler (hub, g, m) { await hub.clients.group(g).send('Msg', m) } },
      Join: { args: [z.string()], async handler (hub, g) { await hub.groups.add(hub.connectionId, g) } },
      Leave: { args: [z.string()], async handler (hub, g) { await hub.groups.remove(hub.connectionId, g) } },
      AddTo: { args: [z.string(), z.string()], async handler (hub, id, g) { await hub.groups.add(id, g) } },
      RemoveFrom: { args: [z.string(), z.string()], async handler (hub, id, g) { await hub.groups.remove(id, g) } }
    },
    async onConnected (hub) {
      record(probe, hub)
      await hub.groups.add(hub.connectionId, 'lobby')
    }
  })
}

function groupIds (probe: Probe, name: string): string[] | undefined {
  const members = probe.lifetime!.groups.get(name)
  return members === undefined ? undefined : [...members].map((c) => c.connectionId).sort()
}

t.test('add and remove from hub methods', async (t) => {
  const probe = newProbe()
  const { baseUrl } = await startApp(t, (app) => { app.mapHub('/hub', makeHub(probe)) })
  const url = `${baseUrl}/hub`
  const a = await peer(t, url, 'A')
  const b = await peer(t, url, 'B')
  const c = await peer(t, url, 'C')
  const peers = [a, b, c]

  await expectDelivery(t, peers, 'added in onConnected', 'lobby', [a, b, c], () => c.conn.invoke('ToGroup', 'lobby', 'lobby'))

  await a.conn.invoke('Join', 'g')
  await expectDelivery(t, peers, 'one member', 'g1', [a], () => c.conn.invoke('ToGroup', 'g', 'g1'))
  await b.conn.invoke('Join', 'g')
  await a.conn.invoke('Join', 'g')
  await expectDelivery(t, peers, 'joining twice is one membership', 'g2', [a, b], () => c.conn.invoke('ToGroup', 'g', 'g2'))
  await a.conn.invoke('Leave', 'g')
  await expectDelivery(t, peers, 'after A leaves', 'g3', [b], () => c.conn.invoke('ToGroup', 'g', 'g3'))
  t.equal(await a.conn.invoke('Leave', 'g'), null, 'leaving a group one is not in is a no-op')
  await b.conn.invoke('Leave', 'g')
  await expectDelivery(t, peers, 'after everyone left', 'g4', [], () => c.conn.invoke('ToGroup', 'g', 'g4'))
  t.equal(groupIds(probe, 'g'), undefined, 'an emptied group is deleted')
  t.same(groupIds(probe, 'lobby'), [a.id, b.id, c.id].sort())

  // Group names are exact strings: no case folding, no trimming.
  await a.conn.invoke('Join', 'Case')
  await expectDelivery(t, peers, 'group names are case-sensitive', 'g5', [], () => c.conn.invoke('ToGroup', 'case', 'g5'))
})

t.test('a hub method changes the membership of another connection', async (t) => {
  const probe = newProbe()
  const { baseUrl } = await startApp(t, (app) => { app.mapHub('/hub', makeHub(probe)) })
  const url = `${baseUrl}/hub`
  const a = await peer(t, url, 'A')
  const b = await peer(t, url, 'B')
  const c = await peer(t, url, 'C')
  const peers = [a, b, c]

  await a.conn.invoke('AddTo', b.id, 'g')
  await a.conn.invoke('AddTo', c.id, 'g')
  await expectDelivery(t, peers, 'A added B and C', 'o1', [b, c], () => a.conn.invoke('ToGroup', 'g', 'o1'))
  await a.conn.invoke('RemoveFrom', b.id, 'g')
  await expectDelivery(t, peers, 'A removed B', 'o2', [c], () => a.conn.invoke('ToGroup', 'g', 'o2'))
  t.equal(await a.conn.invoke('AddTo', 'no-such-connection', 'g'), null, 'adding an unknown connection id is a no-op')
  t.same(groupIds(probe, 'g'), [c.id], 'an unknown id does not enter the group')
  t.equal(await a.conn.invoke('RemoveFrom', 'no-such-connection', 'g'), null, 'removing an unknown connection id is a no-op')
})

t.test('membership ends with the connection', async (t) => {
  const probe = newProbe()
  const { baseUrl } = await startApp(t, (app) => { app.mapHub('/hub', makeHub(probe)) })
  const url = `${baseUrl}/hub`
  const a = await peer(t, url, 'A')
  const b = await peer(t, url, 'B')
  const c = await peer(t, url, 'C')

  await a.conn.invoke('Join', 'shared')
  await b.conn.invoke('Join', 'shared')
  await a.conn.invoke('Join', 'only-a')
  await a.conn.invoke('Join', 'also-only-a')
  t.same(groupIds(probe, 'shared'), [a.id, b.id].sort())
  t.same(groupIds(probe, 'only-a'), [a.id])

  const ended = probe.connections.get(a.id)!.ended
  await a.conn.stop()
  // Resolves once onDisconnected and the lifetime manager's cleanup have run.
  await ended

  const rest = [b, c]
  await expectDelivery(t, rest, 'shared group after A left', 'd1', [b], () => c.conn.invoke('ToGroup', 'shared', 'd1'))
  await expectDelivery(t, rest, "A's own group after A left", 'd2', [], () => c.conn.invoke('ToGroup', 'only-a', 'd2'))
  t.same(groupIds(probe, 'shared'), [b.id], 'A is no longer a member')
  t.equal(groupIds(probe, 'only-a'), undefined, 'groups emptied by the disconnect are deleted')
  t.equal(groupIds(probe, 'also-only-a'), undefined)
  t.same(groupIds(probe, 'lobby'), [b.id, c.id].sort())
  t.notOk(probe.lifetime!.connections.has(a.id), 'the connection is forgotten')

  // Restarting the same client object is a new connection: it gets a new id and no old groups.
  await a.conn.start()
  const again: Peer = { ...a, id: await a.conn.invoke('WhoAmI') as string }
  t.not(again.id, a.id, 'a new connection id')
  await expectDelivery(t, [again, b, c], 'groups do not survive a reconnect', 'd3', [b],
    () => c.conn.invoke('ToGroup', 'shared', 'd3'))

  const endedB = probe.connections.get(b.id)!.ended
  const endedC = probe.connections.get(c.id)!.ended
  await b.conn.stop()
  await c.conn.stop()
  await Promise.all([endedB, endedC])
  t.equal(groupIds(probe, 'shared'), undefined)
  t.same([...probe.lifetime!.groups.keys()], ['lobby'], 'only the live connection\'s group is left')
  t.same(groupIds(probe, 'lobby'), [again.id])
})

t.test('a client cannot join a group without hub code that does it', async (t) => {
  const probe = newProbe()
  const hub = defineHub({
    // Only what the test needs to observe: no method touches groups.
    methods: {
      WhoAmI: { args: [], handler: (hub) => hub.connectionId },
      ToAll: { args: [z.string()], async handler (hub, m) { await hub.clients.all.send('Msg', m) } },
      ToGroup: { args: [z.string(), z.string()], async handler (hub, g, m) { await hub.clients.group(g).send('Msg', m) } }
    },
    onConnected (hub) { record(probe, hub) }
  })
  const { baseUrl } = await startApp(t, (app) => { app.mapHub('/hub', hub) })
  const url = `${baseUrl}/hub`
  const a = await peer(t, url, 'A')
  const b = await peer(t, url, 'B')
  const c = await peer(t, url, 'C')

  // Names a client might hope the server understands; the protocol itself has no group message.
  for (const name of ['AddToGroup', 'AddToGroupAsync', 'JoinGroup', 'groups.add', 'Groups.AddToGroupAsync']) {
    await t.rejects(a.conn.invoke(name, a.id, 'g'), {
      message: `Failed to invoke '${name}' due to an error on the server. HubException: Method does not exist.`
    }, `${name} is not a hub method`)
  }
  t.equal(probe.lifetime!.groups.size, 0, 'no group exists')
  await expectDelivery(t, [a, b, c], 'group send', 'n1', [], () => b.conn.invoke('ToGroup', 'g', 'n1'))
})
