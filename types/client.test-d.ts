import type { HubConnection } from '@microsoft/signalr'
import { z } from 'zod'
import { clientStream, defineHub } from '../lib/index.js'
import { typedHub } from '../lib/client/index.js'
import type { Equal, Expect } from './helpers.js'

const hub = defineHub({
  client: { Notify: [z.string(), z.number()], GetName: { args: [], returns: z.string() } },
  methods: {
    Add: { args: [z.number(), z.number()], returns: z.number(), handler: (_h, a, b) => a + b },
    Length: { args: [z.string().transform((s) => s.length)], handler: (_h, n) => n * 2 },
    Counter: { args: [z.number()], stream: true, async * handler (_h, n) { yield String(n) } },
    Concat: { args: [clientStream(z.string())], async handler (_h, items) { for await (const _ of items); return true } }
  }
})

declare const connection: HubConnection
const typed = typedHub<typeof hub>(connection)

export type Checks = [
  Expect<Equal<Awaited<ReturnType<typeof typed.invoke.Add>>, number>>,
  Expect<Equal<Parameters<typeof typed.invoke.Add>, [number, number]>>,
  // Arguments are zod *inputs*: the transform takes a string on the wire.
  Expect<Equal<Parameters<typeof typed.invoke.Length>, [string]>>,
  Expect<Equal<Awaited<ReturnType<typeof typed.invoke.Length>>, number>>,
  Expect<Equal<ReturnType<typeof typed.stream.Counter>, AsyncIterableIterator<string>>>,
  Expect<Equal<Parameters<typeof typed.invoke.Concat>, [AsyncIterable<string>]>>,
  Expect<Equal<Awaited<ReturnType<typeof typed.send.Add>>, void>>
]

typed.on.Notify((text, n) => {
  const s: string = text
  const k: number = n
  void s; void k
})
typed.on.GetName(() => 'ada')

// @ts-expect-error wrong argument type
void typed.invoke.Add(1, '2')
// @ts-expect-error too few arguments
void typed.invoke.Add(1)
// @ts-expect-error unknown method
void typed.invoke.Nope()
// @ts-expect-error a stream method is not invoked
void typed.invoke.Counter(1)
// @ts-expect-error a non-stream method is not streamed
void typed.stream.Add(1, 2)
// @ts-expect-error unknown client method
typed.on.Unknown(() => {})
// @ts-expect-error a client result must match `returns`
typed.on.GetName(() => 42)
// @ts-expect-error handler parameter types come from the client map
typed.on.Notify((text: number) => { void text })
