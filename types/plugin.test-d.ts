import Fastify, { type FastifyInstance } from 'fastify'
import { z } from 'zod'
import signalr, {
  clientStream, defineHub, signalr as namedSignalr,
  type GroupManager, type HubContext, type InferMethodArgs, type InferMethodResult, type InferStreamItem,
  type SignalRPluginOptions
} from '../lib/index.js'
import type { Equal, Expect } from './helpers.js'

// Every `type _x = Expect<Equal<...>>` below fails to compile when the inferred
// type drifts; every `@ts-expect-error` fails when the line below it compiles.

const chat = defineHub({
  client: {
    ReceiveMessage: [z.string(), z.string()],
    GetMessage: { args: [], returns: z.string() }
  },
  methods: {
    SendMessage: {
      args: [z.string().min(1), z.string().max(4000)],
      async handler (hub, user, message) {
        await hub.clients.all.send('ReceiveMessage', user, message)
      }
    },
    Add: { args: [z.number(), z.number()], returns: z.number(), handler: (_hub, a, b) => a + b },
    AddAsync: { args: [z.number(), z.number()], async handler (_hub, a, b) { return a + b } },
    Length: { args: [z.string().transform((s) => s.length)], handler: (_hub, n) => n },
    Defaulted: { args: [z.number().default(1)], returns: z.string().transform((s) => s.length), handler: (_hub, n) => String(n) },
    Counter: {
      args: [z.number().int().min(0), z.number().int().min(0)],
      stream: true,
      async * handler (hub, count, _delayMs) {
        for (let i = 0; i < count && !hub.signal.aborted; i++) yield i
      }
    },
    Letters: { args: [], stream: true, handler: () => ['a', 'b'] },
    Concat: {
      args: [clientStream(z.string())],
      async handler (_hub, items) {
        let s = ''
        for await (const item of items) s += item
        return s
      }
    },
    Nothing: { args: [], handler () {} }
  }
})

const untyped = defineHub({ methods: { Ping: { args: [], handler: () => 'pong' } } })

// ---------------------------------------------------------------- register

async function registration (): Promise<void> {
  const app = Fastify()
  await app.register(signalr, { keepAliveInterval: 1 })
  await app.register(namedSignalr, {})
  await app.register(signalr)
  await app.register(signalr, {
    keepAliveInterval: 15_000,
    clientTimeoutInterval: 30_000,
    handshakeTimeout: 15_000,
    maximumReceiveMessageSize: null,
    streamBufferCapacity: 10,
    maximumParallelInvocationsPerClient: 1,
    enableDetailedErrors: false,
    statefulReconnectBufferSize: 100_000,
    transports: ['webSockets', 'serverSentEvents', 'longPolling'],
    protocols: ['json', 'messagepack'],
    longPollTimeout: 90_000,
    allowStatefulReconnects: false,
    getUserId: (request) => request.headers['x-user'] as string | undefined,
    maximumMessageDepth: 64
  })
  // @ts-expect-error a depth is a number of levels
  await app.register(signalr, { maximumMessageDepth: '64' })
  // @ts-expect-error a number of milliseconds, not a string
  await app.register(signalr, { keepAliveInterval: 'x' })
  // @ts-expect-error transport names are camelCase option values
  await app.register(signalr, { transports: ['WebSockets'] })
  // @ts-expect-error unknown protocol
  await app.register(signalr, { protocols: ['xml'] })
  // @ts-expect-error getUserId maps a request to a string id
  await app.register(signalr, { getUserId: () => 42 })

  type _options = Expect<Equal<Parameters<NonNullable<SignalRPluginOptions['getUserId']>>[0]['headers'], import('fastify').FastifyRequest['headers']>>
}

// ---------------------------------------------------------------- mapHub

async function mapping (): Promise<void> {
  const app = Fastify()
  await app.register(signalr)

  const returned = app.mapHub('/chathub', chat)
  type _returned = Expect<Equal<typeof returned, FastifyInstance>>
  app.mapHub('/a', chat).mapHub('/b', untyped)
  app.mapHub('/c', chat, { transports: ['webSockets'], protocols: ['json'], allowStatefulReconnects: true, keepAliveInterval: 5, maximumMessageDepth: 16 })

  // @ts-expect-error a hub made by defineHub is required
  app.mapHub('/d', { methods: {} })
  // @ts-expect-error the path comes first
  app.mapHub(chat)
  // @ts-expect-error per-hub options are checked too
  app.mapHub('/e', chat, { transports: ['carrierPigeon'] })

  await app.register(async (scope) => {
    scope.addHook('onRequest', async () => {})
    const scoped = scope.mapHub('/admin', chat, { transports: ['webSockets'] })
    type _scoped = Expect<Equal<typeof scoped, FastifyInstance>>
  })
}

// ---------------------------------------------------------------- hubContext

async function outside (app: FastifyInstance): Promise<void> {
  const context = app.signalr.hubContext(chat)
  type _groups = Expect<Equal<typeof context.groups, GroupManager>>

  await context.clients.group('g').send('ReceiveMessage', 'system', 'hi')
  await context.clients.all.send('ReceiveMessage', 'system', 'hi')
  await context.clients.user('u').send('ReceiveMessage', 'system', 'hi')
  const answer = context.clients.client('id').invoke('GetMessage')
  type _answer = Expect<Equal<typeof answer, Promise<string>>>
  await context.groups.add('id', 'g')

  // @ts-expect-error typed by the hub's client map: wrong argument type
  await context.clients.group('g').send('ReceiveMessage', 'system', 1)
  // @ts-expect-error typed by the hub's client map: unknown method
  await context.clients.group('g').send('Receive', 'system', 'hi')
  // @ts-expect-error typed by the hub's client map: argument count
  await context.clients.all.send('ReceiveMessage', 'system')
  // @ts-expect-error no caller outside a hub method
  void context.clients.caller
  // @ts-expect-error no others outside a hub method
  void context.clients.others
  // @ts-expect-error no othersInGroup outside a hub method
  void context.clients.othersInGroup('g')

  const loose = app.signalr.hubContext(untyped)
  await loose.clients.all.send('AnyMethod', 1, 2, 3)
  type _loose = Expect<Equal<ReturnType<typeof loose.clients.client>['invoke'] extends (...args: any[]) => infer R ? R : never, Promise<unknown>>>

  type _contextType = Expect<Equal<typeof context, HubContext<{
    readonly ReceiveMessage: readonly [z.ZodString, z.ZodString]
    readonly GetMessage: { readonly args: readonly [], readonly returns: z.ZodString }
  }>>>
}

// ---------------------------------------------------------------- Infer* helpers (what clients pass and get)

type _addArgs = Expect<Equal<InferMethodArgs<typeof chat, 'Add'>, [number, number]>>
type _sendArgs = Expect<Equal<InferMethodArgs<typeof chat, 'SendMessage'>, [string, string]>>
// Clients send zod *inputs*: the string before the transform, the optional before the default.
type _lengthArgs = Expect<Equal<InferMethodArgs<typeof chat, 'Length'>, [string]>>
type _defaultedArgs = Expect<Equal<InferMethodArgs<typeof chat, 'Defaulted'>, [number | undefined]>>
type _concatArgs = Expect<Equal<InferMethodArgs<typeof chat, 'Concat'>, [AsyncIterable<string>]>>
type _counterArgs = Expect<Equal<InferMethodArgs<typeof chat, 'Counter'>, [number, number]>>
type _nothingArgs = Expect<Equal<InferMethodArgs<typeof chat, 'Nothing'>, []>>

type _addResult = Expect<Equal<InferMethodResult<typeof chat, 'Add'>, number>>
type _addAsyncResult = Expect<Equal<InferMethodResult<typeof chat, 'AddAsync'>, number>>
type _lengthResult = Expect<Equal<InferMethodResult<typeof chat, 'Length'>, number>>
// With `returns`, the result is that schema's output.
type _defaultedResult = Expect<Equal<InferMethodResult<typeof chat, 'Defaulted'>, number>>
type _concatResult = Expect<Equal<InferMethodResult<typeof chat, 'Concat'>, string>>
type _nothingResult = Expect<Equal<InferMethodResult<typeof chat, 'Nothing'>, void>>

type _counterItem = Expect<Equal<InferStreamItem<typeof chat, 'Counter'>, number>>
type _lettersItem = Expect<Equal<InferStreamItem<typeof chat, 'Letters'>, string>>

// @ts-expect-error not a method of the hub
type _missing = InferMethodArgs<typeof chat, 'Missing'>

export { registration, mapping, outside }
