import t, { type Test } from 'tap'
import { z } from 'zod'
import { defineHub, HubError } from '../../lib/index.js'
import type { Hub } from '../../lib/index.js'
import { startApp } from '../helpers/app.js'
import { deferred, type Deferred } from '../helpers/deferred.js'
import { buildCellClient, connectCell, MATRIX, type Cell, type MatrixClientOptions } from '../helpers/matrix.js'
import { expectDelivery, type Peer } from '../helpers/peers.js'

// The core behaviour suite, run over every transport x protocol cell the
// official client can choose. Each cell is one tap subtest named after it, so
// tap's summary shows how many tests ran per cell.

const ids = z.array(z.string())

interface Ended {
  connectionId: string
  transport: string
  error: Error | undefined
}

/** What the hub saw, for assertions on the server side. */
class Probe {
  readonly connected: Array<{ connectionId: string, transport: string }> = []
  readonly ended: Ended[] = []
  private readonly endWaiters = new Map<string, Deferred<Ended>>()
  streamAborted = deferred<void>()
  streamFinished = deferred<boolean>()
  streamYielded = 0

  onConnected (hub: Hub): void {
    this.connected.push({ connectionId: hub.connectionId, transport: hub.transport })
  }

  onDisconnected (hub: Hub, error: Error | undefined): void {
    const ended = { connectionId: hub.connectionId, transport: hub.transport, error }
    this.ended.push(ended)
    this.waiter(hub.connectionId).resolve(ended)
  }

  /** Resolves once `onDisconnected` has run for `connectionId`. */
  disconnected (connectionId: string): Promise<Ended> {
    return this.waiter(connectionId).promise
  }

  private waiter (connectionId: string): Deferred<Ended> {
    let d = this.endWaiters.get(connectionId)
    if (d === undefined) this.endWaiters.set(connectionId, d = deferred<Ended>())
    return d
  }
}

function makeHub (probe: Probe) {
  return defineHub({
    methods: {
      Add: { args: [z.number(), z.number()], handler: (_h, a, b) => a + b },
      Typed: { args: [z.object({ name: z.string().min(2) })], handler: (_h, o) => o.name },
      Echo: { args: [z.string()], handler: (_h, s) => s },
      Fail: { args: [], handler () { throw new HubError('nope') } },
      Crash: { args: [], handler () { throw new Error('secret internals') } },
      WhoAmI: { args: [], handler: (h) => h.connectionId },
      Transport: { args: [], handler: (h) => h.transport },
      Join: { args: [z.string()], async handler (h, g) { await h.groups.add(h.connectionId, g) } },
      Leave: { args: [z.string()], async handler (h, g) { await h.groups.remove(h.connectionId, g) } },
      ToAll: { args: [z.string()], async handler (h, m) { await h.clients.all.send('Msg', m) } },
      ToCaller: { args: [z.string()], async handler (h, m) { await h.clients.caller.send('Msg', m) } },
      ToOthers: { args: [z.string()], async handler (h, m) { await h.clients.others.send('Msg', m) } },
      ToClient: { args: [z.string(), z.string()], async handler (h, id, m) { await h.clients.client(id).send('Msg', m) } },
      ToClients: { args: [ids, z.string()], async handler (h, l, m) { await h.clients.clients(l).send('Msg', m) } },
      ToAllExcept: { args: [ids, z.string()], async handler (h, ex, m) { await h.clients.allExcept(ex).send('Msg', m) } },
      ToGroup: { args: [z.string(), z.string()], async handler (h, g, m) { await h.clients.group(g).send('Msg', m) } },
      ToGroups: { args: [ids, z.string()], async handler (h, gs, m) { await h.clients.groups(gs).send('Msg', m) } },
      ToGroupExcept: {
        args: [z.string(), ids, z.string()],
        async handler (h, g, ex, m) { await h.clients.groupExcept(g, ex).send('Msg', m) }
      },
      ToOthersInGroup: { args: [z.string(), z.string()], async handler (h, g, m) { await h.clients.othersInGroup(g).send('Msg', m) } },
      ToUser: { args: [z.string(), z.string()], async handler (h, u, m) { await h.clients.user(u).send('Msg', m) } },
      ToUsers: { args: [ids, z.string()], async handler (h, us, m) { await h.clients.users(us).send('Msg', m) } },
      AskCaller: {
        args: [],
        async handler (h) {
          try {
            return { ok: await h.clients.caller.invoke('Question') as unknown }
          } catch (err) {
            return { failed: (err as Error).message }
          }
        }
      },
      Endless: {
        args: [],
        stream: true,
        async * handler (h) {
          const signal = h.signal
          signal.addEventListener('abort', () => { probe.streamAborted.resolve() }, { once: true })
          try {
            for (let i = 0; !signal.aborted; i++) {
              probe.streamYielded++
              yield i
              // Paces the producer so the cancellation arrives while it is still running.
              await new Promise((resolve) => setTimeout(resolve, 2))
            }
          } finally {
            probe.streamFinished.resolve(signal.aborted)
          }
        }
      }
    },
    onConnected (h) { probe.onConnected(h) },
    onDisconnected (h, error) { probe.onDisconnected(h, error) }
  })
}

/** Two cells on the other transports, preferring the other protocol: the peers of a mixed selector test. */
function companions (cell: Cell): Cell[] {
  const out: Cell[] = []
  for (const transport of ['WebSockets', 'ServerSentEvents', 'LongPolling'] as const) {
    if (transport === cell.transport) continue
    const candidates = MATRIX.filter((c) => c.transport === transport)
    out.push(candidates.find((c) => c.protocol !== cell.protocol) ?? candidates[0]!)
  }
  return out
}

async function peer (t: Test, url: string, cell: Cell, label: string, options: MatrixClientOptions = {}): Promise<Peer> {
  const conn = buildCellClient(url, cell, options)
  const got: unknown[] = []
  conn.on('Msg', (m: unknown) => { got.push(m) })
  t.teardown(() => conn.stop())
  await conn.start()
  return { name: `${label} (${cell.name})`, conn, id: await conn.invoke('WhoAmI') as string, got }
}

function waitFor<T> (register: (resolve: (value: T) => void) => void): Promise<T> {
  return new Promise((resolve) => { register(resolve) })
}

const BINDING = /^Failed to invoke 'Add' due to an error on the server\. InvalidDataException: Error binding arguments\. Argument 1: Invalid input: expected number, received string$/

for (const cell of MATRIX) {
  t.test(cell.name, async (t) => {
    const probe = new Probe()
    const hub = makeHub(probe)
    const { app, baseUrl } = await startApp(t, (app) => { app.mapHub('/hub', hub) }, {
      getUserId: (request) => {
        const user = request.headers['x-user-id']
        return typeof user === 'string' ? user : undefined
      }
    })
    const url = `${baseUrl}/hub`

    t.test('arguments failing their schema: the exact binding error, the handler never runs', async (t) => {
      const c = await connectCell(t, url, cell)
      await t.rejects(c.invoke('Add', 1, 'x'), { message: BINDING })
      await t.rejects(c.invoke('Add', 1), { message: "Failed to invoke 'Add' due to an error on the server." }, 'wrong argument count')
      await t.rejects(c.invoke('Typed', { name: 'x' }),
        { message: /^Failed to invoke 'Typed' due to an error on the server\. InvalidDataException: Error binding arguments\. Argument 0: name: Too small/ })
      t.equal(await c.invoke('Typed', { name: 'xy' }), 'xy', 'valid arguments go through on the same connection')
    })

    t.test('method not found', async (t) => {
      const c = await connectCell(t, url, cell)
      await t.rejects(c.invoke('Missing', 1), { message: "Failed to invoke 'Missing' due to an error on the server. HubException: Method does not exist." })
      t.equal(await c.invoke('Add', 2, 3), 5, 'the connection goes on')
    })

    t.test('HubError reaches the caller; any other error is hidden', async (t) => {
      const c = await connectCell(t, url, cell)
      await t.rejects(c.invoke('Fail'), { message: "An unexpected error occurred invoking 'Fail' on the server. HubException: nope" })
      const crash = await c.invoke('Crash').then(() => null, (err: Error) => err)
      t.equal(crash?.message, "An unexpected error occurred invoking 'Crash' on the server.", 'no detail without enableDetailedErrors')
    })

    t.test('selectors across three clients on different cells', async (t) => {
      const [second, third] = companions(cell)
      const a = await peer(t, url, cell, 'A', { headers: { 'x-user-id': 'alice' } })
      const b = await peer(t, url, second!, 'B', { headers: { 'x-user-id': 'bob' } })
      const c = await peer(t, url, third!, 'C', { headers: { 'x-user-id': 'alice' } })
      const peers = [a, b, c]
      t.equal(new Set(peers.map((p) => p.id)).size, 3, 'three distinct connections')
      t.same(await Promise.all(peers.map((p) => p.conn.invoke('Transport'))), [cell.transport, second!.transport, third!.transport],
        'each client is on its own transport')
      await a.conn.invoke('Join', 'red')
      await b.conn.invoke('Join', 'red')
      await c.conn.invoke('Join', 'blue')

      await expectDelivery(t, peers, 'all', 'p-all', [a, b, c], () => b.conn.invoke('ToAll', 'p-all'))
      await expectDelivery(t, peers, 'caller', 'p-caller', [a], () => a.conn.invoke('ToCaller', 'p-caller'))
      await expectDelivery(t, peers, 'others', 'p-others', [b, c], () => a.conn.invoke('ToOthers', 'p-others'))
      await expectDelivery(t, peers, 'client(id)', 'p-client', [c], () => a.conn.invoke('ToClient', c.id, 'p-client'))
      await expectDelivery(t, peers, 'clients(ids)', 'p-clients', [a, b], () => c.conn.invoke('ToClients', [a.id, b.id], 'p-clients'))
      await expectDelivery(t, peers, 'allExcept', 'p-except', [b], () => c.conn.invoke('ToAllExcept', [a.id, c.id], 'p-except'))
      await expectDelivery(t, peers, 'group', 'p-group', [a, b], () => c.conn.invoke('ToGroup', 'red', 'p-group'))
      await expectDelivery(t, peers, 'groups', 'p-groups', [a, b, c], () => a.conn.invoke('ToGroups', ['red', 'blue'], 'p-groups'))
      await expectDelivery(t, peers, 'groupExcept', 'p-group-except', [a], () => c.conn.invoke('ToGroupExcept', 'red', [b.id], 'p-group-except'))
      await expectDelivery(t, peers, 'othersInGroup', 'p-others-group', [b], () => a.conn.invoke('ToOthersInGroup', 'red', 'p-others-group'))
      await expectDelivery(t, peers, 'user', 'p-user', [a, c], () => b.conn.invoke('ToUser', 'alice', 'p-user'))
      await expectDelivery(t, peers, 'users', 'p-users', [b], () => a.conn.invoke('ToUsers', ['bob', 'nobody'], 'p-users'))
    })

    t.test('groups: join, leave, and membership changed from outside the hub', async (t) => {
      const [other] = companions(cell)
      const a = await peer(t, url, cell, 'member')
      const b = await peer(t, url, other!, 'outsider')
      const peers = [a, b]
      const context = app.signalr.hubContext(hub)

      await a.conn.invoke('Join', 'room')
      await expectDelivery(t, peers, 'after join', 'g-1', [a], () => b.conn.invoke('ToGroup', 'room', 'g-1'))
      await expectDelivery(t, peers, 'hubContext group send', 'g-2', [a], () => context.clients.group('room').send('Msg', 'g-2'))
      await a.conn.invoke('Leave', 'room')
      await expectDelivery(t, peers, 'after leave', 'g-3', [], () => b.conn.invoke('ToGroup', 'room', 'g-3'))
      await context.groups.add(b.id, 'room')
      await expectDelivery(t, peers, 'after hubContext add', 'g-4', [b], () => a.conn.invoke('ToGroup', 'room', 'g-4'))
      await context.groups.remove(b.id, 'room')
      await expectDelivery(t, peers, 'after hubContext remove', 'g-5', [], () => a.conn.invoke('ToGroup', 'room', 'g-5'))
    })

    t.test('client results: value, thrown error, missing handler', async (t) => {
      const c = await connectCell(t, url, cell)
      c.on('Question', () => 42)
      t.same(await c.invoke('AskCaller'), { ok: 42 })
      c.off('Question')
      c.on('Question', () => { throw new Error('boom') })
      t.same(await c.invoke('AskCaller'), { failed: 'Error: boom' }, "the client's error reaches the hub method")
      c.off('Question')
      t.same(await c.invoke('AskCaller'), { failed: "Client didn't provide a result." }, 'no handler')
    })

    t.test('disposing a stream subscription aborts hub.signal', async (t) => {
      const c = await connectCell(t, url, cell)
      const first = deferred()
      const received: unknown[] = []
      const subscription = c.stream('Endless').subscribe({
        next: (item) => { received.push(item); first.resolve() },
        complete: () => {},
        error: () => {}
      })
      await first.promise
      subscription.dispose()
      await probe.streamAborted.promise
      t.equal(await probe.streamFinished.promise, true, "the generator's finally ran with hub.signal aborted")
      const producedAtEnd = probe.streamYielded
      t.equal(await c.invoke('Echo', 'after'), 'after', 'the connection goes on')
      t.equal(probe.streamYielded, producedAtEnd, 'the generator produced nothing after it ended')
      t.ok(received.length >= 1 && received.every((v, i) => v === i), 'items arrived in order')
    })

    t.test('onConnected and onDisconnected; a clean stop passes no error', async (t) => {
      const c = buildCellClient(url, cell)
      await c.start()
      const id = await c.invoke('WhoAmI') as string
      t.same(probe.connected.filter((p) => p.connectionId === id), [{ connectionId: id, transport: cell.transport }],
        'onConnected ran once, on this transport')
      await c.stop()
      const ended = await probe.disconnected(id)
      t.equal(ended.error, undefined, 'no error for a client that stopped')
      t.equal(ended.transport, cell.transport)
      t.equal(probe.ended.filter((e) => e.connectionId === id).length, 1, 'onDisconnected ran once')
    })

    t.test('automatic reconnect after a protocol error closes with allowReconnect', async (t) => {
      const reconnectProbe = new Probe()
      const limited = makeHub(reconnectProbe)
      const { baseUrl } = await startApp(t, (app) => { app.mapHub('/hub', limited, { maximumReceiveMessageSize: 1024 }) })
      const c = buildCellClient(`${baseUrl}/hub`, cell, { automaticReconnect: [0, 50, 100] })
      t.teardown(() => c.stop())
      const reconnecting = waitFor<Error | undefined>((resolve) => { c.onreconnecting(resolve) })
      const reconnected = waitFor<string | undefined>((resolve) => { c.onreconnected(resolve) })
      await c.start()
      const oldId = c.connectionId!
      t.equal(await c.invoke('Echo', 'before'), 'before')

      // One message over the receive limit: ASP.NET closes with "Connection closed with an error." and allowReconnect.
      const tooBig = c.invoke('Echo', 'x'.repeat(4000)).then(() => null, (err: Error) => err)
      const reason = await reconnecting
      t.equal(reason?.message, 'Server returned an error on close: Connection closed with an error.')
      t.type(await tooBig, Error, 'the invocation in flight fails')
      const newId = await reconnected
      t.type(newId, 'string')
      t.not(newId, oldId, 'a new connection id')
      t.equal(c.connectionId, newId)
      t.equal(await c.invoke('Echo', 'again'), 'again', 'invocations work again')
      t.equal(await c.invoke('WhoAmI'), newId, 'on the new connection')
      const old = await reconnectProbe.disconnected(oldId)
      t.match(old.error?.message, /maximum message size of 1024B was exceeded/, 'onDisconnected of the old connection gets the error')
    })

    if (cell.transport !== 'LongPolling') {
      // Long polling has no client timeout: the polls are its keep-alive.
      t.test('automatic reconnect after the client timeout closes with allowReconnect', async (t) => {
        const reconnectProbe = new Probe()
        const timed = makeHub(reconnectProbe)
        const { baseUrl } = await startApp(t, (app) => {
          app.mapHub('/hub', timed, { clientTimeoutInterval: 300, keepAliveInterval: 50 })
        })
        const c = buildCellClient(`${baseUrl}/hub`, cell, { automaticReconnect: [0, 50, 100] })
        // The client pings only once, right after the handshake, so the server's 300 ms timeout runs out.
        c.keepAliveIntervalInMilliseconds = 10_000
        t.teardown(() => c.stop())
        const reconnecting = waitFor<Error | undefined>((resolve) => {
          c.onreconnecting((error) => {
            // The new connection must stay up: from now on the client pings about as often as the server.
            c.keepAliveIntervalInMilliseconds = 20
            resolve(error)
          })
        })
        const reconnected = waitFor<string | undefined>((resolve) => { c.onreconnected(resolve) })
        await c.start()
        const oldId = c.connectionId!
        const reason = await reconnecting
        t.equal(reason?.message, 'Server returned an error on close: Connection closed with an error.')
        const newId = await reconnected
        t.not(newId, oldId, 'a new connection id')
        t.equal(await c.invoke('WhoAmI'), newId, 'invocations work on the new connection')
        t.equal(await c.invoke('Add', 20, 22), 42)
        const old = await reconnectProbe.disconnected(oldId)
        t.match(old.error?.message, /ClientTimeoutInterval/, 'onDisconnected of the old connection names the timeout')
      })
    }
  })
}
