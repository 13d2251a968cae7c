import Fastify, { type FastifyInstance } from 'fastify'
import t, { type Test } from 'tap'
import { z } from 'zod'
import signalr, { clientStream, defineHub } from '../../lib/index.js'
import { typedHub } from '../../lib/client/index.js'
import { unlistenedApp } from '../helpers/app.js'

const chat = defineHub({
  client: { ReceiveMessage: [z.string(), z.string()], GetName: { args: [], returns: z.string() } },
  methods: {
    SendMessage: {
      args: [z.string(), z.string()],
      async handler (hub, user, message) { await hub.clients.all.send('ReceiveMessage', user, message) }
    },
    WhoAmI: {
      args: [],
      handler: (hub) => ({
        authorization: hub.request.headers.authorization ?? null,
        room: (hub.request.query as Record<string, string>).room ?? null,
        transport: hub.transport
      })
    },
    Add: { args: [z.number(), z.number()], returns: z.number(), handler: (_h, a, b) => a + b },
    Counter: {
      args: [z.number()],
      stream: true,
      async * handler (hub, n) { for (let i = 0; i < n && !hub.signal.aborted; i++) yield i }
    },
    Concat: { args: [clientStream(z.string())], async handler (_h, items) { let s = ''; for await (const i of items) s += i; return s } },
    AskName: { args: [], handler: (hub) => hub.clients.caller.invoke('GetName') }
  }
})

/** An app that never listens: inject must work without a server socket. */
function buildApp (t: Test, setup?: (app: FastifyInstance) => void): Promise<FastifyInstance> {
  return unlistenedApp(t, setup ?? ((app) => { app.mapHub('/chat', chat) }))
}

t.test('inject connects an official client with no server listening', async (t) => {
  const app = await buildApp(t)
  const connection = await app.signalr.inject('/chat')
  t.equal(connection.state, 'Connected')
  t.equal(app.server.listening, false, 'no port was opened')
  t.equal(await connection.invoke('Add', 2, 3), 5)
  const received = new Promise<string[]>((resolve) => { connection.on('ReceiveMessage', (u: string, m: string) => { resolve([u, m]) }) })
  await connection.invoke('SendMessage', 'ada', 'hi')
  t.same(await received, ['ada', 'hi'])
  await connection.stop()
  t.equal(connection.state, 'Disconnected')
  t.equal(app.server.listening, false)
})

t.test('headers and query reach hub.request, and the transport says InMemory', async (t) => {
  const app = await buildApp(t)
  const connection = await app.signalr.inject('/chat', { headers: { authorization: 'Bearer abc' }, query: { room: 'blue' } })
  t.same(await connection.invoke('WhoAmI'), { authorization: 'Bearer abc', room: 'blue', transport: 'InMemory' })
  await connection.stop()
})

for (const protocol of ['json', 'messagepack'] as const) {
  t.test(`streams both ways and client results over ${protocol}`, async (t) => {
    const app = await buildApp(t)
    const connection = await app.signalr.inject('/chat', { protocol })
    // The client's chosen protocol (the handshake fails if the server does not take it).
    t.equal((connection as unknown as { _protocol: { name: string } })._protocol.name, protocol)
    const typed = typedHub<typeof chat>(connection)
    const items: number[] = []
    for await (const n of typed.stream.Counter(5)) items.push(n)
    t.same(items, [0, 1, 2, 3, 4])

    const { Subject } = await import('@microsoft/signalr')
    const subject = new Subject<string>()
    const result = connection.invoke('Concat', subject)
    subject.next('a')
    subject.next('b')
    subject.complete()
    t.equal(await result, 'ab')

    connection.on('GetName', () => 'grace')
    t.equal(await connection.invoke('AskName'), 'grace')
    await connection.stop()
  })
}

t.test("a rejecting onRequest hook on the hub's scope stops inject", async (t) => {
  const seen: string[] = []
  const app = await buildApp(t, (app) => {
    void app.register(async (scope) => {
      scope.addHook('onRequest', async (request, reply) => {
        seen.push(`${request.method} ${request.url.split('?')[0]!}`)
        if (request.headers.authorization !== 'Bearer good') return reply.code(401).send('no')
      })
      scope.mapHub('/secure', chat)
    })
    app.mapHub('/open', chat)
  })
  await t.rejects(app.signalr.inject('/secure'), /401/)
  t.same(seen, ['POST /secure/negotiate'])
  const ok = await app.signalr.inject('/secure', { headers: { authorization: 'Bearer good' } })
  t.same(seen.slice(1), ['POST /secure/negotiate', 'GET /secure'], 'the hook ran on negotiate and on connect')
  t.equal(await ok.invoke('Add', 1, 1), 2)
  await ok.stop()
})

t.test('the in-memory transport is not offered to network clients', async (t) => {
  const app = await buildApp(t)
  const response = await app.inject({ method: 'POST', url: '/chat/negotiate?negotiateVersion=1' })
  const transports = (response.json() as { availableTransports: Array<{ transport: string }> }).availableTransports.map((e) => e.transport)
  t.same(transports, ['WebSockets', 'ServerSentEvents', 'LongPolling'])
  // A forged inject header is ignored: the request is an ordinary long poll.
  const { connectionToken } = response.json() as { connectionToken: string }
  const poll = await app.inject({ method: 'GET', url: `/chat?id=${connectionToken}`, headers: { 'x-fastify-signalr-inject': 'guess' } })
  t.equal(poll.statusCode, 200)
  const again = await app.inject({ method: 'POST', url: '/chat/negotiate?negotiateVersion=1' })
  const token = (again.json() as { connectionToken: string }).connectionToken
  const sse = await app.inject({ method: 'DELETE', url: `/chat?id=${token}`, headers: { 'x-fastify-signalr-inject': 'guess' } })
  t.equal(sse.statusCode, 400, 'still pending: nothing was opened in memory')
})

t.test('inject refuses a path that is not absolute and an unknown protocol', async (t) => {
  const app = await buildApp(t)
  await t.rejects(app.signalr.inject('chat'), { code: 'SIGNALR_ERR_INVALID_OPTION' })
  await t.rejects(app.signalr.inject('/chat', { protocol: 'xml' as 'json' }), { code: 'SIGNALR_ERR_INVALID_OPTION' })
})

t.test('closing the app ends injected connections', async (t) => {
  const app = Fastify()
  await app.register(signalr)
  app.mapHub('/chat', chat)
  const connection = await app.signalr.inject('/chat')
  const closed = new Promise<Error | undefined>((resolve) => { connection.onclose(resolve) })
  await app.close()
  t.equal(await closed, undefined)
  t.equal(connection.state, 'Disconnected')
})

t.test("inject works whatever network transports a hub offers; 'inMemory' is no option value", async (t) => {
  const app = await buildApp(t, (app) => { app.mapHub('/lp', chat, { transports: ['longPolling'] }) })
  const connection = await app.signalr.inject('/lp')
  t.equal(await connection.invoke('Add', 20, 22), 42)
  await connection.stop()
  t.throws(() => app.mapHub('/bad', chat, { transports: ['inMemory' as 'webSockets'] }), { code: 'SIGNALR_ERR_INVALID_OPTION' })
})

t.test('a stopped injected connection starts again, as a new connection', async (t) => {
  const app = await buildApp(t)
  const connection = await app.signalr.inject('/chat')
  const first = connection.connectionId
  await connection.stop()
  await connection.start()
  t.equal(connection.state, 'Connected')
  t.not(connection.connectionId, first)
  t.equal(await connection.invoke('Add', 1, 2), 3)
  await connection.stop()
})

t.test("telemetry reports injected connections as 'in_memory'", async (t) => {
  const { MeterProvider, MetricReader } = await import('@opentelemetry/sdk-metrics')
  class Reader extends MetricReader {
    protected async onShutdown (): Promise<void> {}
    protected async onForceFlush (): Promise<void> {}
  }
  const reader = new Reader()
  const app = Fastify()
  t.teardown(() => app.close())
  await app.register(signalr, { telemetry: { meterProvider: new MeterProvider({ readers: [reader] }) } })
  app.mapHub('/chat', chat)
  const connection = await app.signalr.inject('/chat')
  const { resourceMetrics } = await reader.collect()
  const active = resourceMetrics.scopeMetrics.flatMap((scope) => scope.metrics).find((m) => m.descriptor.name === 'signalr.server.active_connections')
  t.same(active?.dataPoints[0]?.attributes, { 'signalr.transport': 'in_memory' })
  await connection.stop()
})

t.test('a missing optional client package is named in the error, with the install command', async (t) => {
  const { loadOptional } = await import('../../lib/inject.js')
  await t.rejects(loadOptional('@fastify-signalr-test/not-installed', 'needs the official client'), {
    code: 'SIGNALR_ERR_INVALID_OPTION',
    message: 'fastify-signalr: app.signalr.inject needs the official client: npm install -D @fastify-signalr-test/not-installed'
  })
  t.ok(await loadOptional('@microsoft/signalr', 'needs the official client'), 'an installed one loads')
  await t.rejects(loadOptional(new URL('../fixtures/fails-on-load.ts', import.meta.url).href, 'needs the official client'),
    { message: 'this package is broken: its native binding is missing' },
    'one that is installed but fails while loading reports its own error, not the install hint')
})
