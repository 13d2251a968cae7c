import Fastify, { type FastifyInstance } from 'fastify'
import t, { type Test } from 'tap'
import { z } from 'zod'
import signalr, {
  clientStream, defineHub, SignalRError, type AnyHubDefinition, type MapHubOptions, type SignalRPluginOptions
} from '../lib/index.js'
import { startApp } from './helpers/app.js'
import { connect, nextMessage } from './helpers/clients.js'
import { negotiateRaw } from './helpers/raw.js'

const echo = defineHub({
  methods: {
    Echo: { args: [z.string()], handler: (_hub, s) => s },
    Broadcast: { args: [z.string()], async handler (hub, s) { await hub.clients.all.send('Message', s) } }
  }
})

/** An app that is never listened on; closed in teardown. */
function bareApp (t: Test): FastifyInstance {
  const app = Fastify()
  t.teardown(() => app.close())
  return app
}

/** Registers the plugin with options the types would refuse. */
async function registerWith (t: Test, options: Record<string, unknown>): Promise<FastifyInstance> {
  const app = bareApp(t)
  await app.register(signalr, options as SignalRPluginOptions)
  return app
}

t.test('every documented option is accepted with valid values', async (t) => {
  const all: SignalRPluginOptions = {
    keepAliveInterval: 15_000,
    clientTimeoutInterval: 30_000,
    handshakeTimeout: 15_000,
    maximumReceiveMessageSize: 32 * 1024,
    streamBufferCapacity: 10,
    maximumParallelInvocationsPerClient: 1,
    enableDetailedErrors: false,
    statefulReconnectBufferSize: 100_000,
    transports: ['webSockets', 'serverSentEvents', 'longPolling'],
    protocols: ['json', 'messagepack'],
    longPollTimeout: 90_000,
    allowStatefulReconnects: false,
    getUserId: (request) => request.headers['x-user'] as string | undefined,
    backplane: undefined,
    // Beyond API.md (ASP.NET's DisconnectTimeout and two safety limits).
    disconnectTimeout: 15_000,
    clientResultTimeout: 30_000,
    maximumSendBufferSize: 1024 * 1024
  }
  const { baseUrl } = await startApp(t, (app) => { app.mapHub('/hub', echo) }, all)
  const c = await connect(t, `${baseUrl}/hub`)
  t.equal(await c.invoke('Echo', 'ok'), 'ok', 'the app works with every option set')

  await t.resolves(registerWith(t, {}), 'no options at all')
  await t.resolves(registerWith(t, { maximumReceiveMessageSize: null }), 'null: no size limit')
  await t.resolves(registerWith(t, { transports: ['longPolling'], protocols: ['messagepack'] }), 'a subset')
  await t.resolves(registerWith(t, { connectionTokenSecret: 'a secret of at least 16 chars' }))
})

t.test('bad option values fail at register, naming the option', async (t) => {
  const cases: Array<[string, Record<string, unknown>, RegExp]> = [
    ['keepAliveInterval: -1', { keepAliveInterval: -1 }, /option "keepAliveInterval"/],
    ['keepAliveInterval: 0', { keepAliveInterval: 0 }, /option "keepAliveInterval"/],
    ['keepAliveInterval: 1.5', { keepAliveInterval: 1.5 }, /option "keepAliveInterval"/],
    ['keepAliveInterval: "15s"', { keepAliveInterval: '15s' }, /option "keepAliveInterval"/],
    ['clientTimeoutInterval: NaN', { clientTimeoutInterval: Number.NaN }, /option "clientTimeoutInterval"/],
    ['handshakeTimeout: Infinity', { handshakeTimeout: Infinity }, /option "handshakeTimeout"/],
    ['maximumReceiveMessageSize: "big"', { maximumReceiveMessageSize: 'big' }, /option "maximumReceiveMessageSize"/],
    ['maximumReceiveMessageSize: -5', { maximumReceiveMessageSize: -5 }, /option "maximumReceiveMessageSize"/],
    ['streamBufferCapacity: 0', { streamBufferCapacity: 0 }, /option "streamBufferCapacity"/],
    ['maximumParallelInvocationsPerClient: 0', { maximumParallelInvocationsPerClient: 0 }, /option "maximumParallelInvocationsPerClient"/],
    ['enableDetailedErrors: "yes"', { enableDetailedErrors: 'yes' }, /option "enableDetailedErrors"/],
    ['statefulReconnectBufferSize: -1', { statefulReconnectBufferSize: -1 }, /option "statefulReconnectBufferSize"/],
    ['transports: ["carrierPigeon"]', { transports: ['carrierPigeon'] }, /option "transports".*webSockets/],
    ['transports: []', { transports: [] }, /option "transports"/],
    ['transports: "webSockets"', { transports: 'webSockets' }, /option "transports"/],
    ['protocols: []', { protocols: [] }, /option "protocols"/],
    ['protocols: ["xml"]', { protocols: ['xml'] }, /option "protocols".*json/],
    ['longPollTimeout: 0', { longPollTimeout: 0 }, /option "longPollTimeout"/],
    ['allowStatefulReconnects: 1', { allowStatefulReconnects: 1 }, /option "allowStatefulReconnects"/],
    ['getUserId: "sub"', { getUserId: 'sub' }, /option "getUserId"/],
    ['backplane: 42', { backplane: 42 }, /option "backplane"/],
    ['connectionTokenSecret: "short"', { connectionTokenSecret: 'short' }, /option "connectionTokenSecret"/],
    ['disconnectTimeout: -1', { disconnectTimeout: -1 }, /option "disconnectTimeout"/],
    ['unknown option keepAlive', { keepAlive: 15_000 }, /unknown option "keepAlive"/]
  ]
  for (const [name, options, message] of cases) {
    await t.rejects(registerWith(t, options), { name: 'SignalRError', code: 'SIGNALR_ERR_INVALID_OPTION', message }, name)
  }
  await t.rejects(registerWith(t, { keepAliveInterval: -1 }), { message: /^fastify-signalr: register: / }, 'says where it failed')
})

t.test('mapHub options override the plugin\'s and are validated likewise', async (t) => {
  const { baseUrl } = await startApp(t, (app) => {
    app.mapHub('/narrow', echo, {
      transports: ['webSockets'],
      protocols: ['json'],
      allowStatefulReconnects: true,
      keepAliveInterval: 5000,
      clientTimeoutInterval: 10_000,
      maximumReceiveMessageSize: null,
      enableDetailedErrors: true
    })
    app.mapHub('/wide', echo)
  }, { transports: ['webSockets', 'longPolling'] })
  const narrow = await negotiateRaw(`${baseUrl}/narrow`, 'negotiateVersion=1&useStatefulReconnect=true')
  t.same((narrow.body.availableTransports as Array<{ transport: string }>).map((e) => e.transport), ['WebSockets'])
  t.equal(narrow.body.useStatefulReconnect, true, 'allowStatefulReconnects from mapHub')
  const wide = await negotiateRaw(`${baseUrl}/wide`, 'negotiateVersion=1&useStatefulReconnect=true')
  t.same((wide.body.availableTransports as Array<{ transport: string }>).map((e) => e.transport), ['WebSockets', 'LongPolling'],
    'a hub without overrides keeps the plugin\'s transports')
  t.equal(wide.body.useStatefulReconnect, undefined)

  const app = await registerWith(t, {})
  const bad: Array<[string, Record<string, unknown>, RegExp]> = [
    ['transports: ["carrierPigeon"]', { transports: ['carrierPigeon'] }, /mapHub\('\/h'\): option "transports"/],
    ['protocols: []', { protocols: [] }, /mapHub\('\/h'\): option "protocols"/],
    ['keepAliveInterval: -1', { keepAliveInterval: -1 }, /mapHub\('\/h'\): option "keepAliveInterval"/],
    ['maximumReceiveMessageSize: "big"', { maximumReceiveMessageSize: 'big' }, /option "maximumReceiveMessageSize"/],
    ['unknown option keepAlive', { keepAlive: 1 }, /mapHub\('\/h'\): unknown option "keepAlive"/],
    ['a plugin-only option', { connectionTokenSecret: 'a secret of at least 16 chars' }, /unknown option "connectionTokenSecret"/]
  ]
  for (const [name, options, message] of bad) {
    t.throws(() => app.mapHub('/h', echo, options as MapHubOptions), { code: 'SIGNALR_ERR_INVALID_OPTION', message }, name)
  }
  // None of the failed calls took the path.
  t.doesNotThrow(() => app.mapHub('/h', echo, { transports: ['webSockets'] }))
})

t.test('defineHub rejects bad definitions', async (t) => {
  const define = (definition: Record<string, unknown>) => () => defineHub(definition as never)
  const invalid = { name: 'SignalRError', code: 'SIGNALR_ERR_INVALID_HUB' }

  t.throws(define({
    methods: {
      Send: { args: [], handler () {} },
      send: { args: [], handler () {} }
    }
  }), { ...invalid, message: /'Send' and 'send' differ only by case/ }, 'method names that differ only by case')
  t.throws(define({ methods: { Send: { args: ['string'], handler () {} } } }),
    { ...invalid, message: /method 'Send': argument 0 must be a zod schema/ }, 'a string instead of a schema')
  t.throws(define({ methods: { Send: { args: [z.string(), { type: 'string' }], handler () {} } } }),
    { ...invalid, message: /method 'Send': argument 1 must be a zod schema/ }, 'a JSON schema instead of a zod schema')
  t.throws(define({ methods: { Send: { args: z.string(), handler () {} } } }),
    { ...invalid, message: /method 'Send': `args` must be an array/ }, 'args not in an array')
  t.throws(define({ methods: { Send: { args: [] } } }),
    { ...invalid, message: /method 'Send': `handler` must be a function/ }, 'missing handler')
  t.throws(define({ methods: { Send: { args: [], handler: 'send' } } }),
    { ...invalid, message: /`handler` must be a function/ }, 'a handler that is not a function')
  t.throws(define({ methods: { Send: { args: [], returns: 'number', handler () {} } } }),
    { ...invalid, message: /`returns` must be a zod schema/ })
  t.throws(define({ methods: {}, client: { Receive: [], receive: [] } }),
    { ...invalid, message: /differ only by case/ }, 'client method names that differ only by case')
  t.throws(define({ methods: {}, onConnected: 'yes' }), { ...invalid, message: /onConnected/ })
  t.throws(define({ methods: null }), { ...invalid, message: /`methods` must be an object/ })
  t.doesNotThrow(define({ methods: { Send: { args: [z.string()], handler () {} }, SendAll: { args: [], handler () {} } } }),
    'names that differ by more than case are fine')
})

t.test('defineHub names what is wrong with each part a JavaScript caller may get wrong', async (t) => {
  const handler = (): void => {}
  const bad: Array<[string, unknown, string]> = [
    ['no definition', undefined, 'defineHub: expected a hub definition object'],
    ['a definition that is a string', 'chat', 'defineHub: expected a hub definition object'],
    ['an empty name', { name: '', methods: {} }, 'defineHub: `name` must be a non-empty string'],
    ['a name that is not a string', { name: 7, methods: {} }, 'defineHub: `name` must be a non-empty string'],
    ['onDisconnected not a function', { methods: {}, onDisconnected: {} }, 'defineHub: `onDisconnected` must be a function'],
    ['authorize not a function', { methods: {}, authorize: true }, 'defineHub: `authorize` must be a function'],
    ['hooks null', { methods: {}, hooks: null }, 'defineHub: `hooks` must be an object'],
    ['a misspelt hook', { methods: {}, hooks: { beforeInvoke: handler } }, "defineHub: unknown hook 'beforeInvoke'"],
    ['a hook that is not a function', { methods: {}, hooks: { onConnect: 'log' } }, "defineHub: hook 'onConnect' must be a function"],
    ['client as a list of names', { methods: {}, client: 'ReceiveMessage' }, 'defineHub: `client` must map method names to argument schemas'],
    ['client null', { methods: {}, client: null }, 'defineHub: `client` must map method names to argument schemas'],
    ['an empty method name', { methods: { '': { args: [], handler } } }, 'defineHub: a method name must not be empty'],
    ['a method that is a bare function', { methods: { Send: handler } }, "defineHub: method 'Send' must be an object with args and handler"],
    ['a method that is null', { methods: { Send: null } }, "defineHub: method 'Send' must be an object with args and handler"],
    ['a method authorize that is not a function', { methods: { Send: { args: [], handler, authorize: 'admin' } } },
      "defineHub: method 'Send': `authorize` must be a function"],
    ['stream as a string', { methods: { Send: { args: [], handler, stream: 'yes' } } }, "defineHub: method 'Send': `stream` must be a boolean"],
    ['a rate limit without a window', { methods: { Send: { args: [], handler, rateLimit: { max: 5 } } } },
      "defineHub: method 'Send': `rateLimit` must be { max, timeWindow } with positive integers"]
  ]
  for (const [what, definition, message] of bad) {
    t.throws(() => defineHub(definition as never), { name: 'SignalRError', code: 'SIGNALR_ERR_INVALID_HUB', message }, what)
  }
  t.throws(() => clientStream('string' as never), { code: 'SIGNALR_ERR_INVALID_HUB', message: 'clientStream: expected a zod schema for the stream items' },
    'clientStream without a zod schema')
  const hooked = defineHub({ name: 'hooked', methods: {}, hooks: { onConnect: handler }, authorize: () => true, onDisconnected: handler })
  t.equal(hooked.name, 'hooked', 'the same parts, well formed, are taken')
})

t.test('mapHub rejects a non-hub and a path that is taken', async (t) => {
  const app = await registerWith(t, {})
  const fake = { methods: { Echo: { args: [z.string()], handler: (_hub: unknown, s: string) => s } } }
  t.throws(() => app.mapHub('/fake', fake as unknown as AnyHubDefinition),
    { name: 'SignalRError', code: 'SIGNALR_ERR_INVALID_HUB', message: /mapHub\('\/fake'\): expected a hub made by defineHub\(\)/ })
  t.throws(() => app.mapHub('/nothing', undefined as unknown as AnyHubDefinition), SignalRError)
  t.throws(() => app.mapHub('no-slash', echo), { message: /path must be a string starting with '\/'/ })

  app.mapHub('/chat', echo)
  t.throws(() => app.mapHub('/chat', echo), { code: 'SIGNALR_ERR_INVALID_HUB', message: /mapHub\('\/chat'\): a hub is already mapped at this path/ })
  const other = defineHub({ methods: {} })
  t.throws(() => app.mapHub('/chat', other), { message: /already mapped/ }, 'also with a different hub')
  t.doesNotThrow(() => app.mapHub('/chat2', echo), 'one hub may be mapped at several paths')
  await app.ready()
  t.pass('the app with its hubs starts')
})

t.test('several Fastify instances in one process do not share anything', async (t) => {
  // The same hub definition on both, with different plugin options.
  const a = await startApp(t, (app) => { app.mapHub('/hub', echo) }, { transports: ['webSockets'] })
  const b = await startApp(t, (app) => { app.mapHub('/hub', echo) }, { transports: ['webSockets', 'longPolling'], keepAliveInterval: 1000 })

  const offered = async (baseUrl: string) =>
    ((await negotiateRaw(`${baseUrl}/hub`)).body.availableTransports as Array<{ transport: string }>).map((e) => e.transport)
  t.same(await offered(a.baseUrl), ['WebSockets'], 'each instance keeps its own options')
  t.same(await offered(b.baseUrl), ['WebSockets', 'LongPolling'])

  const onA = await connect(t, `${a.baseUrl}/hub`)
  const onB = await connect(t, `${b.baseUrl}/hub`)
  const seenByB: unknown[] = []
  onB.on('Message', (s: unknown) => { seenByB.push(s) })

  // A broadcast from a hub method on A: only A's client gets it.
  const aGot = nextMessage(onA, 'Message')
  await onA.invoke('Broadcast', 'from A')
  t.same(await aGot, ['from A'])
  const aCalls: unknown[] = []
  onA.on('Message', (s: unknown) => { aCalls.push(s) })

  // From outside the hub, and aimed at A's connection id from B's side.
  await a.app.signalr.hubContext(echo).clients.all.send('Message', 'context A')
  await b.app.signalr.hubContext(echo).clients.client(onA.connectionId!).send('Message', 'B to A\'s id')

  // Barrier: B's own broadcast reaches B; whatever A sent would have come before it.
  const bGot = nextMessage(onB, 'Message')
  await b.app.signalr.hubContext(echo).clients.all.send('Message', 'barrier B')
  t.same(await bGot, ['barrier B'])
  t.same(seenByB, ['barrier B'], 'nothing of A reached the client of B')

  const aBarrier = nextMessage(onA, 'Message')
  await a.app.signalr.hubContext(echo).clients.all.send('Message', 'barrier A')
  await aBarrier
  t.same(aCalls, ['context A', 'barrier A'], 'B\'s message to A\'s connection id went nowhere')
})

t.test("Fastify's own register options pass through without being taken for ours", async (t) => {
  const app = await registerWith(t, { logLevel: 'warn', keepAliveInterval: 1000 })
  t.type(app.mapHub, 'function')
  await t.rejects(registerWith(t, { logLevel: 'warn', keepAlive: 1 }), /unknown option "keepAlive"/)
})
