import type { FastifyBaseLogger, FastifyRequest } from 'fastify'
import { z } from 'zod'
import {
  clientStream, defineHub, HubError,
  type GroupManager, type Hub, type HubDefinition, type TransportKind, type UntypedClient
} from '../lib/index.js'
import type { Equal, Expect } from './helpers.js'
import { expectType } from './helpers.js'

// Every `type _x = Expect<Equal<...>>` below fails to compile when the inferred
// type drifts; every `@ts-expect-error` fails when the line below it compiles.

// ---------------------------------------------------------------- handler parameters: z.output of `args`

defineHub({
  methods: {
    Outputs: {
      args: [
        z.string().transform((s) => s.length),
        z.number().default(1),
        z.object({ name: z.string(), age: z.number().optional() }),
        z.array(z.enum(['a', 'b'])),
        z.string().nullable()
      ],
      handler (_hub, length, withDefault, person, letters, maybe) {
        type _length = Expect<Equal<typeof length, number>>
        type _default = Expect<Equal<typeof withDefault, number>>
        type _person = Expect<Equal<typeof person, { name: string, age?: number | undefined }>>
        type _letters = Expect<Equal<typeof letters, Array<'a' | 'b'>>>
        type _maybe = Expect<Equal<typeof maybe, string | null>>
        // @ts-expect-error the transform turned the string into a number
        length.toUpperCase()
        // @ts-expect-error `.default()` takes undefined out of what the handler sees
        expectType<undefined>(withDefault)
        // @ts-expect-error the object schema has no `email`
        void person.email
        // @ts-expect-error nullable: must be narrowed first
        void maybe.length
        return person.name.length + length + withDefault
      }
    },
    NoArgs: {
      args: [],
      handler (...rest) {
        type _rest = Expect<Equal<typeof rest, [hub: Hub<UntypedClient>]>>
      }
    },
    // Declaring a parameter with a type other than its schema's output is an error.
    WrongParam: {
      args: [z.number()],
      // @ts-expect-error the schema gives a number, not a string
      handler: (_hub, n: string) => n
    },
    // More parameters than schemas: the extra one has no schema behind it.
    TooManyParams: {
      args: [z.number()],
      // @ts-expect-error only one argument schema
      handler: (_hub, a: number, b: number) => a + b
    }
  }
})

// ---------------------------------------------------------------- `returns` and `stream`

defineHub({
  methods: {
    SyncOk: { args: [z.number()], returns: z.number(), handler: (_hub, n) => n + 1 },
    AsyncOk: {
      args: [z.number()],
      returns: z.number(),
      async handler (_hub, n): Promise<number> { return n }
    },
    AsyncInferredOk: {
      args: [z.number()],
      returns: z.number(),
      async handler (_hub, n) {
        type _n = Expect<Equal<typeof n, number>>
        await Promise.resolve()
        return n * 2
      }
    },
    // `returns` checks the handler against the schema's input; the client gets its output.
    TransformedReturns: { args: [], returns: z.string().transform((s) => s.length), handler: () => 'abc' },
    SyncWrong: {
      args: [z.number()],
      returns: z.number(),
      // @ts-expect-error returns says number, the handler returns a string
      handler: (_hub, n) => String(n)
    },
    AsyncWrong: {
      args: [],
      returns: z.number(),
      // @ts-expect-error a Promise<string> is checked against `returns` too
      async handler () { return 'x' }
    },
    NoReturnsAnything: { args: [], handler: () => ({ any: 'thing' }) },
    Generator: {
      args: [z.number()],
      stream: true,
      async * handler (hub, count) {
        for (let i = 0; i < count && !hub.signal.aborted; i++) yield i
      }
    },
    SyncIterable: { args: [], stream: true, handler: () => [1, 2, 3] },
    AsyncReturningIterable: { args: [], stream: true, async handler () { return [1, 2, 3] } },
    NotIterable: {
      args: [],
      stream: true,
      // @ts-expect-error a stream method must return an (async) iterable
      handler: () => 1
    },
    PromiseOfNumber: {
      args: [],
      stream: true,
      // @ts-expect-error a promise of a non-iterable is not a stream
      async handler () { return 1 }
    },
    Fail: { args: [], handler () { throw new HubError('visible to the caller') } }
  }
})

// ---------------------------------------------------------------- client-to-server streams

defineHub({
  methods: {
    Concat: {
      args: [clientStream(z.string()), z.number()],
      async handler (_hub, items, times) {
        type _items = Expect<Equal<typeof items, AsyncIterable<string>>>
        type _times = Expect<Equal<typeof times, number>>
        let s = ''
        for await (const item of items) {
          type _item = Expect<Equal<typeof item, string>>
          s += item
        }
        return s.repeat(times)
      }
    },
    TransformedItems: {
      args: [clientStream(z.string().transform(Number))],
      async handler (_hub, items) {
        type _items = Expect<Equal<typeof items, AsyncIterable<number>>>
      }
    },
    NotAnArray: {
      args: [clientStream(z.string())],
      async handler (_hub, items) {
        // @ts-expect-error an upload stream is an AsyncIterable, not an array
        void items.length
      }
    }
  }
})

// ---------------------------------------------------------------- the `hub` parameter

defineHub({
  methods: {
    Context: {
      args: [],
      handler (hub) {
        type _connectionId = Expect<Equal<typeof hub.connectionId, string>>
        type _userId = Expect<Equal<typeof hub.userId, string | undefined>>
        type _signal = Expect<Equal<typeof hub.signal, AbortSignal>>
        type _transport = Expect<Equal<typeof hub.transport, 'WebSockets' | 'ServerSentEvents' | 'LongPolling' | 'InMemory'>>
        type _transportKind = Expect<Equal<TransportKind, 'WebSockets' | 'ServerSentEvents' | 'LongPolling' | 'InMemory'>>
        type _request = Expect<Equal<typeof hub.request, FastifyRequest>>
        type _items = Expect<Equal<typeof hub.items, Map<unknown, unknown>>>
        type _log = Expect<Equal<typeof hub.log, FastifyBaseLogger>>
        type _abort = Expect<Equal<typeof hub.abort, () => void>>
        type _groups = Expect<Equal<typeof hub.groups, GroupManager>>
        type _add = Expect<Equal<ReturnType<typeof hub.groups.add>, Promise<void>>>
        // @ts-expect-error the connection id is read-only
        hub.connectionId = 'other'
        // @ts-expect-error `transport` is one of the transport kinds
        expectType<typeof hub.transport>('webSockets')
      }
    }
  },
  onConnected (hub) {
    type _hub = Expect<Equal<typeof hub, Hub<UntypedClient>>>
  },
  onDisconnected (hub, error) {
    type _hub = Expect<Equal<typeof hub, Hub<UntypedClient>>>
    type _error = Expect<Equal<typeof error, Error | undefined>>
    // @ts-expect-error undefined on a clean close: narrow first
    void error.message
  }
})

// ---------------------------------------------------------------- the `client` map types send/invoke

const typed = defineHub({
  client: {
    ReceiveMessage: [z.string(), z.string()],
    Count: [z.number().int()],
    Nothing: [],
    GetMessage: { args: [z.string()], returns: z.string() },
    Confirm: { args: [] }
  },
  methods: {
    SendMessage: {
      args: [z.string(), z.string()],
      async handler (hub, user, message) {
        await hub.clients.all.send('ReceiveMessage', user, message)
        await hub.clients.others.send('Count', 1)
        await hub.clients.caller.send('Nothing')
        await hub.clients.group('g').send('ReceiveMessage', 'a', 'b')
        await hub.clients.othersInGroup('g').send('ReceiveMessage', 'a', 'b')
        await hub.clients.groupExcept('g', [hub.connectionId]).send('ReceiveMessage', 'a', 'b')
        await hub.clients.groups(['a', 'b']).send('ReceiveMessage', 'a', 'b')
        await hub.clients.client('id').send('ReceiveMessage', 'a', 'b')
        await hub.clients.clients(['id']).send('ReceiveMessage', 'a', 'b')
        await hub.clients.allExcept(['id']).send('ReceiveMessage', 'a', 'b')
        await hub.clients.user('u').send('ReceiveMessage', 'a', 'b')
        await hub.clients.users(['u']).send('ReceiveMessage', 'a', 'b')
        expectType<Promise<void>>(hub.clients.all.send('ReceiveMessage', 'a', 'b'))

        // @ts-expect-error not a client method
        await hub.clients.all.send('ReceiveMesage', 'a', 'b')
        // @ts-expect-error wrong argument type
        await hub.clients.all.send('ReceiveMessage', 'a', 1)
        // @ts-expect-error too few arguments
        await hub.clients.all.send('ReceiveMessage', 'a')
        // @ts-expect-error too many arguments
        await hub.clients.all.send('ReceiveMessage', 'a', 'b', 'c')
        // @ts-expect-error the selector proxies are typed the same way
        await hub.clients.group('g').send('Count', 'one')
        // @ts-expect-error `Nothing` takes no arguments
        await hub.clients.caller.send('Nothing', 1)

        const plain = hub.clients.caller.invoke('Count', 1)
        type _plain = Expect<Equal<typeof plain, Promise<unknown>>>
        const answer = hub.clients.caller.invoke('GetMessage', 'question')
        type _answer = Expect<Equal<typeof answer, Promise<string>>>
        const confirmed = hub.clients.client('id').invoke('Confirm')
        type _confirmed = Expect<Equal<typeof confirmed, Promise<unknown>>>
        // @ts-expect-error `{ args, returns }` specs check their arguments too
        await hub.clients.caller.invoke('GetMessage', 42)
        // @ts-expect-error not a client method
        await hub.clients.caller.invoke('Unknown')
        // @ts-expect-error only single-connection proxies can invoke
        await hub.clients.all.invoke('GetMessage', 'q')
        // @ts-expect-error nor can groups
        await hub.clients.group('g').invoke('GetMessage', 'q')
      }
    }
  },
  async onConnected (hub) {
    await hub.clients.caller.send('ReceiveMessage', 'system', 'welcome')
    // @ts-expect-error lifecycle hooks see the same typed clients
    await hub.clients.caller.send('ReceiveMessage', 'system')
  }
})

type TypedClient = typeof typed extends HubDefinition<any, infer C> ? C : never
type _typedClientKeys = Expect<Equal<keyof TypedClient, 'ReceiveMessage' | 'Count' | 'Nothing' | 'GetMessage' | 'Confirm'>>

// ---------------------------------------------------------------- hubs without `client` accept any method

defineHub({
  methods: {
    Anything: {
      args: [],
      async handler (hub) {
        type _hub = Expect<Equal<typeof hub, Hub<UntypedClient>>>
        await hub.clients.all.send('WhateverYouLike', 1, 'two', { three: 3 }, [4])
        await hub.clients.group('g').send('NoArgs')
        const result = hub.clients.caller.invoke('GetAnything', 1)
        type _result = Expect<Equal<typeof result, Promise<unknown>>>
        // @ts-expect-error a method name is still required
        await hub.clients.all.send()
        // @ts-expect-error and it must be a string
        await hub.clients.all.send(42)
      }
    }
  }
})
