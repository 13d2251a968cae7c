import { Writable } from 'node:stream'
import t from 'tap'
import { defineHub, HubError, type Hub } from '../lib/index.js'
import { startApp } from './helpers/app.js'
import { deferred } from './helpers/deferred.js'
import { buildClient, closed, connect } from './helpers/clients.js'
import { frame, handshakeRequest, invocation, rawConnect } from './helpers/raw.js'

interface Disconnect {
  connectionId: string
  error: Error | undefined
  items: Map<unknown, unknown>
}

/** Records every onDisconnected call and lets a test wait for one connection's. */
function disconnectRecorder () {
  const calls: Disconnect[] = []
  const waiting = new Map<string, (d: Disconnect) => void>()
  return {
    calls,
    record (hub: Hub, error: Error | undefined): void {
      const d = { connectionId: hub.connectionId, error, items: hub.items }
      calls.push(d)
      waiting.get(d.connectionId)?.(d)
    },
    of (connectionId: string): Promise<Disconnect> {
      const done = calls.find((d) => d.connectionId === connectionId)
      if (done !== undefined) return Promise.resolve(done)
      return new Promise((resolve) => { waiting.set(connectionId, resolve) })
    }
  }
}

t.test('onConnected finishes before the first invocation runs', async (t) => {
  const order: string[] = []
  const entered = deferred()
  const gate = deferred()
  const hub = defineHub({
    methods: {
      Get: { args: [], handler (hub) { order.push('Get'); return hub.items.get('x') ?? 'unset' } }
    },
    async onConnected (hub) {
      order.push('onConnected:start')
      entered.resolve()
      await gate.promise
      hub.items.set('x', 1)
      order.push('onConnected:end')
    }
  })
  const { wsUrl } = await startApp(t, (app) => { app.mapHub('/hub', hub) })
  const raw = await rawConnect(t, `${wsUrl}/hub`)
  // The invocation travels in the handshake's own frame, so the server holds it
  // before onConnected even starts: only the server's ordering can delay it.
  raw.sendText(handshakeRequest() + frame(invocation('Get', [], '1')))
  t.equal(await raw.nextText(), '{}')
  await entered.promise
  t.same(order, ['onConnected:start'], 'the invocation waits while onConnected is pending')
  gate.resolve()
  t.same(await raw.next(), { type: 3, invocationId: '1', result: 1 })
  t.same(order, ['onConnected:start', 'onConnected:end', 'Get'])
})

t.test('onConnected, the methods and onDisconnected share the connection state', async (t) => {
  const disconnects = disconnectRecorder()
  const connectedIds: string[] = []
  const hub = defineHub({
    methods: {
      Get: { args: [], handler: (hub) => hub.items.get('x') ?? null },
      Id: { args: [], handler: (hub) => hub.connectionId }
    },
    async onConnected (hub) {
      await Promise.resolve()
      connectedIds.push(hub.connectionId)
      hub.items.set('x', 1)
    },
    onDisconnected: (hub, error) => { disconnects.record(hub, error) }
  })
  const { baseUrl } = await startApp(t, (app) => { app.mapHub('/hub', hub) })
  const c = await connect(t, `${baseUrl}/hub`)
  t.equal(await c.invoke('Get'), 1, 'a value set in onConnected is visible to the first method')
  t.equal(await c.invoke('Id'), c.connectionId)
  t.same(connectedIds, [c.connectionId], 'onConnected ran once, for this connection')
  const id = c.connectionId!
  await c.stop()
  const d = await disconnects.of(id)
  t.equal(d.items.get('x'), 1, 'onDisconnected sees the same items')
})

t.test('onDisconnected gets no error when the client calls stop()', async (t) => {
  const disconnects = disconnectRecorder()
  const hub = defineHub({
    methods: { Ping: { args: [], handler: () => 'pong' } },
    onDisconnected: (hub, error) => { disconnects.record(hub, error) }
  })
  const { baseUrl } = await startApp(t, (app) => { app.mapHub('/hub', hub) })
  const c = await connect(t, `${baseUrl}/hub`)
  t.equal(await c.invoke('Ping'), 'pong')
  const id = c.connectionId!
  await c.stop()
  const d = await disconnects.of(id)
  t.equal(d.error, undefined)
  t.equal(disconnects.calls.length, 1, 'onDisconnected runs exactly once')
})

t.test('a throwing onConnected refuses the connection', async (t) => {
  t.test('a HubError reaches the official client with its message', async (t) => {
    const disconnects = disconnectRecorder()
    const hub = defineHub({
      methods: { Ping: { args: [], handler: () => 'pong' } },
      onConnected (hub) {
        if ((hub.request.query as Record<string, string>).refuse === '1') throw new HubError('go away')
      },
      onDisconnected: (hub, error) => { disconnects.record(hub, error) }
    })
    const { baseUrl } = await startApp(t, (app) => { app.mapHub('/hub', hub) })

    const refused = buildClient(`${baseUrl}/hub?refuse=1`)
    t.teardown(() => refused.stop())
    const ended = closed(refused)
    // The handshake answer goes out before onConnected runs, so start() may
    // resolve and the refusal then arrives as a Close; either way is correct.
    const error = await refused.start().then(() => ended, (err: Error) => err)
    t.ok(error instanceof Error, 'the client reports an error')
    t.match(error?.message, 'Connection closed with an error. HubException: go away')

    // A connection that never opened gets no onDisconnected (as in ASP.NET):
    // after a served client has come and gone, its call is the only one.
    const served = await connect(t, `${baseUrl}/hub`)
    t.equal(await served.invoke('Ping'), 'pong')
    const id = served.connectionId!
    await served.stop()
    await disconnects.of(id)
    t.same(disconnects.calls.map((d) => d.connectionId), [id])
  })

  t.test('on the wire: a Close with the error and without allowReconnect', async (t) => {
    const hub = defineHub({
      methods: {},
      onConnected () { throw new HubError('go away') }
    })
    const { wsUrl } = await startApp(t, (app) => { app.mapHub('/hub', hub) })
    const raw = await rawConnect(t, `${wsUrl}/hub`, { handshake: true })
    t.equal(await raw.nextText(), '{"type":7,"error":"Connection closed with an error. HubException: go away"}')
    t.equal((await raw.closed).code, 1000)
  })

  t.test('any other error is hidden unless enableDetailedErrors is on', async (t) => {
    const hub = defineHub({
      methods: {},
      onConnected () { throw new Error('secret internals') }
    })
    const plain = await startApp(t, (app) => { app.mapHub('/hub', hub) })
    const raw = await rawConnect(t, `${plain.wsUrl}/hub`, { handshake: true })
    t.equal(await raw.nextText(), '{"type":7,"error":"Connection closed with an error."}')

    const detailed = await startApp(t, (app) => { app.mapHub('/hub', hub) }, { enableDetailedErrors: true })
    const raw2 = await rawConnect(t, `${detailed.wsUrl}/hub`, { handshake: true })
    t.equal(await raw2.nextText(), '{"type":7,"error":"Connection closed with an error. Error: secret internals"}')
  })
})

t.test('hub.abort() ends the connection and onDisconnected gets no error', async (t) => {
  const disconnects = disconnectRecorder()
  const hub = defineHub({
    methods: {
      Abort: { args: [], handler (hub) { hub.abort() } },
      Ping: { args: [], handler: () => 'pong' }
    },
    onDisconnected: (hub, error) => { disconnects.record(hub, error) }
  })
  const { baseUrl } = await startApp(t, (app) => { app.mapHub('/hub', hub) })
  const other = await connect(t, `${baseUrl}/hub`)
  const c = await connect(t, `${baseUrl}/hub`)
  // The client forgets its id once closed.
  const id = c.connectionId!
  const ended = closed(c)
  await c.send('Abort')
  t.equal(await ended, undefined, 'the client sees a close without error')
  const d = await disconnects.of(id)
  t.equal(d.error, undefined)
  t.equal(await other.invoke('Ping'), 'pong', 'other connections are untouched')
})

t.test('a transport that drops without a close still runs onDisconnected', async (t) => {
  const disconnects = disconnectRecorder()
  const hub = defineHub({
    methods: { Id: { args: [], handler: (hub) => hub.connectionId } },
    onDisconnected: (hub, error) => { disconnects.record(hub, error) }
  })
  const { wsUrl } = await startApp(t, (app) => { app.mapHub('/hub', hub) })
  const raw = await rawConnect(t, `${wsUrl}/hub`, { handshake: true })
  raw.send(invocation('Id', [], '1'))
  const id = (await raw.next()).result as string
  raw.ws.terminate()
  const d = await disconnects.of(id)
  t.equal(d.connectionId, id)
  t.equal(disconnects.calls.length, 1)
})

t.test('hub.request is the request of the WebSocket upgrade', async (t) => {
  const hub = defineHub({
    methods: {
      Request: {
        args: [],
        handler: (hub) => ({
          method: hub.request.method,
          path: hub.request.url.split('?')[0],
          room: (hub.request.query as Record<string, string>).room,
          header: hub.request.headers['x-test']
        })
      },
      Transport: { args: [], handler: (hub) => hub.transport }
    }
  })
  const { baseUrl } = await startApp(t, (app) => { app.mapHub('/hub', hub) })
  const c = await connect(t, `${baseUrl}/hub?room=blue`, { headers: { 'x-test': 'yes' } })
  // GET rules out the negotiate POST: the hub sees the request that opened the transport.
  t.same(await c.invoke('Request'), { method: 'GET', path: '/hub', room: 'blue', header: 'yes' })
  t.equal(await c.invoke('Transport'), 'WebSockets')
})

t.test('hub.log is a child of the Fastify logger bound to the hub and connection', async (t) => {
  const lines: Array<Record<string, unknown>> = []
  const sink = new Writable({
    write (chunk: Buffer, _encoding, done) {
      lines.push(JSON.parse(chunk.toString('utf8')) as Record<string, unknown>)
      done()
    }
  })
  const hub = defineHub({
    name: 'lifecycle',
    methods: {
      Bindings: {
        args: [],
        handler (hub) {
          hub.log.info('from the hub')
          return (hub.log as unknown as { bindings (): Record<string, unknown> }).bindings()
        }
      }
    }
  })
  const { baseUrl } = await startApp(t, (app) => { app.mapHub('/hub', hub) }, {}, { logger: { level: 'info', stream: sink } })
  const c = await connect(t, `${baseUrl}/hub`)
  const bindings = await c.invoke('Bindings') as Record<string, unknown>
  t.equal(bindings.connectionId, c.connectionId)
  t.equal(bindings.hub, 'lifecycle')
  const line = lines.find((l) => l.msg === 'from the hub')
  t.ok(line, 'the line reaches the stream of the Fastify logger')
  t.equal(line?.pid, process.pid, 'with the root logger\'s base fields')
  t.equal(line?.connectionId, c.connectionId)
})

t.test('hub.items lives as long as one connection and is not shared', async (t) => {
  const hub = defineHub({
    methods: {
      Next: {
        args: [],
        handler (hub) {
          const n = (hub.items.get('n') as number | undefined ?? 0) + 1
          hub.items.set('n', n)
          return n
        }
      }
    }
  })
  const { baseUrl } = await startApp(t, (app) => { app.mapHub('/hub', hub) })
  const a = await connect(t, `${baseUrl}/hub`)
  const b = await connect(t, `${baseUrl}/hub`)
  t.equal(await a.invoke('Next'), 1)
  t.equal(await a.invoke('Next'), 2)
  t.equal(await b.invoke('Next'), 1, 'another connection starts empty')
  t.equal(await a.invoke('Next'), 3)
  await a.stop()
  const again = await connect(t, `${baseUrl}/hub`)
  t.equal(await again.invoke('Next'), 1, 'a new connection starts empty')
})

t.test('hub.userId comes from getUserId(request)', async (t) => {
  const hub = defineHub({
    methods: { User: { args: [], handler: (hub) => hub.userId ?? 'none' } },
    onConnected (hub) { hub.items.set('user', hub.userId) }
  })
  const withUsers = await startApp(t, (app) => { app.mapHub('/hub', hub) }, {
    getUserId: (request) => (request.query as Record<string, string | undefined>).user
  })
  const alice = await connect(t, `${withUsers.baseUrl}/hub?user=alice`)
  t.equal(await alice.invoke('User'), 'alice')
  const anonymous = await connect(t, `${withUsers.baseUrl}/hub`)
  t.equal(await anonymous.invoke('User'), 'none', 'undefined from getUserId')

  const without = await startApp(t, (app) => { app.mapHub('/hub', hub) })
  const c = await connect(t, `${without.baseUrl}/hub?user=alice`)
  t.equal(await c.invoke('User'), 'none', 'no getUserId: no user id')
})
