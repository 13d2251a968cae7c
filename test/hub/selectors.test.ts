import t from 'tap'
import { z } from 'zod'
import { defineHub, SignalRError } from '../../lib/index.js'
import type { HubConnection as ServerConnection } from '../../lib/connection/connection.js'
import { InvocationContext } from '../../lib/hub/caller-context.js'
import type { HubMessage } from '../../lib/protocol/messages.js'
import { jsonProtocol } from '../../lib/protocol/json.js'
import { startApp } from '../helpers/app.js'
import { expectDelivery, peer, receives } from '../helpers/peers.js'

const ids = z.array(z.string())

/** Server-side view of the connections, for waiting until a disconnect is fully processed. */
interface Probe { connections: Map<string, ServerConnection> }

function makeHub (probe: Probe) {
  return defineHub({
    methods: {
      WhoAmI: { args: [], handler: (hub) => hub.connectionId },
      UserId: { args: [], handler: (hub) => hub.userId ?? null },
      Join: { args: [z.string()], async handler (hub, group) { await hub.groups.add(hub.connectionId, group) } },
      ToAll: { args: [z.string()], async handler (hub, m) { await hub.clients.all.send('Msg', m) } },
      ToCaller: { args: [z.string()], async handler (hub, m) { await hub.clients.caller.send('Msg', m) } },
      ToOthers: { args: [z.string()], async handler (hub, m) { await hub.clients.others.send('Msg', m) } },
      ToAllExcept: { args: [ids, z.string()], async handler (hub, ex, m) { await hub.clients.allExcept(ex).send('Msg', m) } },
      ToClient: { args: [z.string(), z.string()], async handler (hub, id, m) { await hub.clients.client(id).send('Msg', m) } },
      ToClients: { args: [ids, z.string()], async handler (hub, list, m) { await hub.clients.clients(list).send('Msg', m) } },
      ToGroup: { args: [z.string(), z.string()], async handler (hub, g, m) { await hub.clients.group(g).send('Msg', m) } },
      ToGroups: { args: [ids, z.string()], async handler (hub, gs, m) { await hub.clients.groups(gs).send('Msg', m) } },
      ToGroupExcept: {
        args: [z.string(), ids, z.string()],
        async handler (hub, g, ex, m) { await hub.clients.groupExcept(g, ex).send('Msg', m) }
      },
      ToOthersInGroup: { args: [z.string(), z.string()], async handler (hub, g, m) { await hub.clients.othersInGroup(g).send('Msg', m) } },
      ToUser: { args: [z.string(), z.string()], async handler (hub, u, m) { await hub.clients.user(u).send('Msg', m) } },
      ToUsers: { args: [ids, z.string()], async handler (hub, us, m) { await hub.clients.users(us).send('Msg', m) } }
    },
    onConnected (hub) {
      if (!(hub instanceof InvocationContext)) throw new Error('expected the internal InvocationContext')
      probe.connections.set(hub.connectionId, hub.connection as ServerConnection)
    }
  })
}

t.test('every hub selector reaches exactly its connections', async (t) => {
  const hub = makeHub({ connections: new Map() })
  const { baseUrl } = await startApp(t, (app) => { app.mapHub('/hub', hub) })
  const url = `${baseUrl}/hub`
  const a = await peer(t, url, 'A')
  const b = await peer(t, url, 'B')
  const c = await peer(t, url, 'C')
  const d = await peer(t, url, 'D')
  const peers = [a, b, c, d]
  t.equal(new Set(peers.map((p) => p.id)).size, 4, 'connection ids are distinct')

  // red = {A, B}, blue = {B, C}; D is in no group.
  await a.conn.invoke('Join', 'red')
  await b.conn.invoke('Join', 'red')
  await b.conn.invoke('Join', 'blue')
  await c.conn.invoke('Join', 'blue')

  await expectDelivery(t, peers, 'all', 'p-all', [a, b, c, d], () => a.conn.invoke('ToAll', 'p-all'))
  await expectDelivery(t, peers, 'caller', 'p-caller', [b], () => b.conn.invoke('ToCaller', 'p-caller'))
  await expectDelivery(t, peers, 'others', 'p-others', [b, c, d], () => a.conn.invoke('ToOthers', 'p-others'))
  await expectDelivery(t, peers, 'allExcept', 'p-except', [a, d],
    () => a.conn.invoke('ToAllExcept', [b.id, c.id], 'p-except'))
  await expectDelivery(t, peers, 'allExcept([])', 'p-except-none', [a, b, c, d],
    () => a.conn.invoke('ToAllExcept', [], 'p-except-none'))
  await expectDelivery(t, peers, 'client', 'p-client', [c], () => a.conn.invoke('ToClient', c.id, 'p-client'))
  await expectDelivery(t, peers, 'client(unknown id)', 'p-client-none', [],
    () => a.conn.invoke('ToClient', 'no-such-connection', 'p-client-none'))
  await expectDelivery(t, peers, 'clients', 'p-clients', [a, c],
    () => b.conn.invoke('ToClients', [a.id, c.id, 'no-such-connection'], 'p-clients'))
  await expectDelivery(t, peers, 'group', 'p-group', [a, b], () => d.conn.invoke('ToGroup', 'red', 'p-group'))
  await expectDelivery(t, peers, 'group(empty)', 'p-group-none', [], () => d.conn.invoke('ToGroup', 'green', 'p-group-none'))
  // B is in both groups and still gets a single copy.
  await expectDelivery(t, peers, 'groups', 'p-groups', [a, b, c], () => d.conn.invoke('ToGroups', ['red', 'blue'], 'p-groups'))
  await expectDelivery(t, peers, 'groupExcept', 'p-group-except', [b],
    () => c.conn.invoke('ToGroupExcept', 'red', [a.id], 'p-group-except'))
  await expectDelivery(t, peers, 'othersInGroup (member)', 'p-others-group', [c],
    () => b.conn.invoke('ToOthersInGroup', 'blue', 'p-others-group'))
  await expectDelivery(t, peers, 'othersInGroup (non-member)', 'p-others-group-2', [a, b],
    () => d.conn.invoke('ToOthersInGroup', 'red', 'p-others-group-2'))
})

t.test('user(id) and users(ids) follow getUserId', async (t) => {
  const probe: Probe = { connections: new Map() }
  const hub = makeHub(probe)
  const { baseUrl } = await startApp(t, (app) => { app.mapHub('/hub', hub) }, {
    getUserId: (request) => {
      const header = request.headers['x-user-id']
      if (typeof header === 'string') return header
      const auth = request.headers.authorization
      return auth?.startsWith('Bearer ') === true ? auth.slice('Bearer '.length) : undefined
    }
  })
  const url = `${baseUrl}/hub`
  const alice1 = await peer(t, url, 'alice#1', { headers: { 'x-user-id': 'alice' } })
  const alice2 = await peer(t, url, 'alice#2', { headers: { 'x-user-id': 'alice' } })
  const bob = await peer(t, url, 'bob', { headers: { 'x-user-id': 'bob' } })
  // In Node the official client sends the access token as an Authorization header.
  const dave = await peer(t, url, 'dave', { accessToken: 'dave' })
  const anon = await peer(t, url, 'anonymous')
  const peers = [alice1, alice2, bob, dave, anon]

  t.equal(await alice1.conn.invoke('UserId'), 'alice')
  t.equal(await dave.conn.invoke('UserId'), 'dave', 'user id from the access token')
  t.equal(await anon.conn.invoke('UserId'), null, 'no user id without credentials')

  await expectDelivery(t, peers, 'user', 'p-user', [alice1, alice2], () => anon.conn.invoke('ToUser', 'alice', 'p-user'))
  await expectDelivery(t, peers, 'user(token)', 'p-user-token', [dave], () => anon.conn.invoke('ToUser', 'dave', 'p-user-token'))
  await expectDelivery(t, peers, 'user(unknown)', 'p-user-none', [], () => anon.conn.invoke('ToUser', 'carol', 'p-user-none'))
  await expectDelivery(t, peers, 'users', 'p-users', [alice1, alice2, bob],
    () => dave.conn.invoke('ToUsers', ['alice', 'bob', 'alice', 'carol'], 'p-users'))

  // After one of alice's connections ends, user('alice') reaches only the other.
  const ended = probe.connections.get(alice1.id)!.ended
  await alice1.conn.stop()
  await ended
  const rest = peers.filter((p) => p !== alice1)
  await expectDelivery(t, rest, 'user after a disconnect', 'p-user-after', [alice2], () => bob.conn.invoke('ToUser', 'alice', 'p-user-after'))
})

t.test('hubContext from an HTTP route reaches all, a group and a user', async (t) => {
  const hub = makeHub({ connections: new Map() })
  const other = makeHub({ connections: new Map() })
  const { app, baseUrl } = await startApp(t, (app) => {
    app.mapHub('/hub', hub)
    app.post('/broadcast', async (request) => {
      const body = request.body as { to: 'all' | 'group' | 'user' | 'add', name?: string, id?: string, payload?: string }
      const context = app.signalr.hubContext(hub)
      if (body.to === 'all') await context.clients.all.send('Msg', body.payload)
      else if (body.to === 'group') await context.clients.group(body.name!).send('Msg', body.payload)
      else if (body.to === 'user') await context.clients.user(body.name!).send('Msg', body.payload)
      else await context.groups.add(body.id!, body.name!)
      return { ok: true }
    })
  }, { getUserId: (request) => request.headers['x-user-id'] as string | undefined })
  const url = `${baseUrl}/hub`
  const a = await peer(t, url, 'A', { headers: { 'x-user-id': 'alice' } })
  const b = await peer(t, url, 'B', { headers: { 'x-user-id': 'bob' } })
  const c = await peer(t, url, 'C')
  const peers = [a, b, c]

  const post = async (body: object): Promise<void> => {
    const response = await fetch(`${baseUrl}/broadcast`, {
      method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(body)
    })
    t.equal(response.status, 200, `POST /broadcast ${JSON.stringify(body)}`)
  }

  await expectDelivery(t, peers, 'context all', 'h-all', [a, b, c], () => post({ to: 'all', payload: 'h-all' }))
  await c.conn.invoke('Join', 'news')
  // Group membership changed from outside any hub method.
  await post({ to: 'add', id: a.id, name: 'news' })
  await expectDelivery(t, peers, 'context group', 'h-group', [a, c], () => post({ to: 'group', name: 'news', payload: 'h-group' }))
  await expectDelivery(t, peers, 'context user', 'h-user', [b], () => post({ to: 'user', name: 'bob', payload: 'h-user' }))

  const context = app.signalr.hubContext(hub)
  t.notOk('caller' in context.clients, 'no caller outside a hub')
  t.notOk('others' in context.clients, 'no others outside a hub')
  t.notOk('othersInGroup' in context.clients, 'no othersInGroup outside a hub')

  t.throws(() => app.signalr.hubContext(other), {
    name: 'SignalRError',
    code: 'SIGNALR_ERR_HUB_NOT_MAPPED',
    message: /hubContext\(hub\): this hub is not mapped; call app\.mapHub\(path, hub\) first/
  }, 'hubContext of an unmapped hub throws a clear error')
  let error: unknown
  try { app.signalr.hubContext(other) } catch (err) { error = err }
  t.ok(error instanceof SignalRError, 'the error is a SignalRError')
})

t.test('hubContext only knows the hubs of its own app', async (t) => {
  const hub = makeHub({ connections: new Map() })
  await startApp(t, (app) => { app.mapHub('/hub', hub) })
  const { app: second } = await startApp(t, () => {})
  t.throws(() => second.signalr.hubContext(hub), { code: 'SIGNALR_ERR_HUB_NOT_MAPPED' })
})

t.test('a broadcast is serialized once, not once per receiver', async (t) => {
  const hub = makeHub({ connections: new Map() })
  const { baseUrl } = await startApp(t, (app) => { app.mapHub('/hub', hub) })
  const url = `${baseUrl}/hub`
  const peers = [await peer(t, url, 'A'), await peer(t, url, 'B'), await peer(t, url, 'C'), await peer(t, url, 'D')]
  await peers[0]!.conn.invoke('Join', 'g')
  await peers[1]!.conn.invoke('Join', 'g')
  await peers[2]!.conn.invoke('Join', 'g')

  const encoded: HubMessage[] = []
  const original = jsonProtocol.encode
  jsonProtocol.encode = function (message: HubMessage): Buffer {
    encoded.push(message)
    return original.call(this, message)
  }
  t.teardown(() => { jsonProtocol.encode = original })
  const encodings = (payload: string): number => encoded.filter((m) =>
    'target' in m && m.target === 'Msg' && 'arguments' in m && m.arguments[0] === payload).length

  const all = Promise.all(peers.map((p) => receives(p, 'once-all')))
  await peers[3]!.conn.invoke('ToAll', 'once-all')
  await all
  t.equal(encodings('once-all'), 1, 'clients.all to 4 connections: one encode')

  const group = Promise.all(peers.slice(0, 3).map((p) => receives(p, 'once-group')))
  await peers[3]!.conn.invoke('ToGroup', 'g', 'once-group')
  await group
  t.equal(encodings('once-group'), 1, 'group of 3: one encode')

  const others = Promise.all(peers.slice(1).map((p) => receives(p, 'once-others')))
  await peers[0]!.conn.invoke('ToOthers', 'once-others')
  await others
  t.equal(encodings('once-others'), 1, 'others: one encode')
})
