import t from 'tap'
import { z } from 'zod'
import { clientStream, defineHub, HubError } from '../../lib/index.js'
import { startApp } from '../helpers/app.js'
import { deferred } from '../helpers/deferred.js'
import { connect, signalR } from '../helpers/clients.js'
import { rawConnect, type RawRecord } from '../helpers/raw.js'

interface StreamOutcome<T> {
  items: T[]
  error?: Error
}

/** Subscribes to a server-to-client stream and resolves once it completes or fails. */
function streamOutcome<T = unknown> (connection: signalR.HubConnection, method: string, ...args: unknown[]): Promise<StreamOutcome<T>> {
  return new Promise((resolve) => {
    const items: T[] = []
    connection.stream<T>(method, ...args).subscribe({
      next: (item) => { items.push(item) },
      complete: () => { resolve({ items }) },
      error: (err: Error) => { resolve({ items, error: err }) }
    })
  })
}

// A missed cancellation or a stuck reader would only end at tap's timeout; fail sooner.
const timeout = 10_000

const STREAM_FAILED = 'An error occurred on the server while streaming results.'

const hub = defineHub({
  methods: {
    Counter: {
      args: [z.number().int().min(0), z.number().int().min(0)],
      stream: true,
      async * handler (hub, count, delayMs) {
        for (let i = 0; i < count && !hub.signal.aborted; i++) {
          yield i
          await new Promise((resolve) => setTimeout(resolve, delayMs))
        }
      }
    },
    FromArray: { args: [z.number().int().min(0)], stream: true, handler: (_hub, n) => Array.from({ length: n }, (_, i) => i * 10) },
    FromSet: { args: [], stream: true, handler: () => new Set(['x', 'y', 'z']) },
    FromSyncGenerator: {
      args: [],
      stream: true,
      * handler () { yield 'a'; yield 'b' }
    },
    FromPromise: { args: [], stream: true, async handler () { await Promise.resolve(); return [true, false] } },
    Empty: { args: [], stream: true, handler: () => [] },
    FailMidway: {
      args: [],
      stream: true,
      async * handler () {
        yield 1
        yield 2
        throw new Error('secret internals')
      }
    },
    RefuseMidway: {
      args: [],
      stream: true,
      async * handler () {
        yield 1
        throw new HubError('no more items')
      }
    },
    Add: { args: [z.number(), z.number()], handler: (_hub, a, b) => a + b },
    Concat: {
      args: [clientStream(z.string())],
      async handler (_hub, items) {
        let s = ''
        for await (const item of items) s += item
        return s
      }
    },
    Zip: {
      args: [clientStream(z.string()), z.string(), clientStream(z.number())],
      async handler (_hub, words, separator, numbers) {
        const w: string[] = []
        for await (const word of words) w.push(word)
        let sum = 0
        for await (const n of numbers) sum += n
        return `${w.join('')}${separator}${sum}`
      }
    },
    ConcatCatching: {
      args: [clientStream(z.string())],
      async handler (_hub, items) {
        const seen: string[] = []
        try {
          for await (const item of items) seen.push(item)
        } catch (err) {
          return `after ${seen.join(',')} the hub saw: ${(err as Error).message}`
        }
        return 'no error'
      }
    },
    First: {
      args: [clientStream(z.string())],
      async handler (_hub, items) {
        // Returns the first item (and ends the stream early).
        // eslint-disable-next-line no-unreachable-loop
        for await (const item of items) return item
        return null
      }
    },
    Echo: { args: [z.string()], handler: (_hub, s) => s }
  }
})

t.test('server-to-client streams', async (t) => {
  const { baseUrl } = await startApp(t, (app) => { app.mapHub('/hub', hub) })
  const c = await connect(t, `${baseUrl}/hub`)

  t.same(await streamOutcome(c, 'Counter', 5, 0), { items: [0, 1, 2, 3, 4] }, 'an async generator streams every item, then completes')
  t.same(await streamOutcome(c, 'counter', 2, 1), { items: [0, 1] }, 'stream method names match case-insensitively')
  t.same(await streamOutcome(c, 'FromArray', 3), { items: [0, 10, 20] }, 'a returned array is streamed')
  t.same(await streamOutcome(c, 'FromSet'), { items: ['x', 'y', 'z'] }, 'any Iterable is streamed')
  t.same(await streamOutcome(c, 'FromSyncGenerator'), { items: ['a', 'b'] }, 'a sync generator is streamed')
  t.same(await streamOutcome(c, 'FromPromise'), { items: [true, false] }, 'a promise of an iterable is awaited, then streamed')
  t.same(await streamOutcome(c, 'Empty'), { items: [] }, 'an empty stream just completes')

  const [one, two] = await Promise.all([streamOutcome(c, 'Counter', 3, 1), streamOutcome(c, 'FromArray', 2)])
  t.same(one, { items: [0, 1, 2] }, 'two streams at once on one connection stay apart')
  t.same(two, { items: [0, 10] })
})

t.test('an error thrown mid-stream ends the stream with an error', async (t) => {
  const { baseUrl } = await startApp(t, (app) => { app.mapHub('/hub', hub) })
  const c = await connect(t, `${baseUrl}/hub`)

  const failed = await streamOutcome(c, 'FailMidway')
  t.same(failed.items, [1, 2], 'items yielded before the error are delivered')
  t.equal(failed.error?.message, STREAM_FAILED, 'a plain error is hidden')

  const refused = await streamOutcome(c, 'RefuseMidway')
  t.same(refused.items, [1])
  t.equal(refused.error?.message, `${STREAM_FAILED} HubException: no more items`, 'a HubError carries its message')

  t.equal(await c.invoke('Echo', 'still here'), 'still here', 'the connection survives a failed stream')
})

t.test('enableDetailedErrors shows the detail of a failed stream', async (t) => {
  const { baseUrl } = await startApp(t, (app) => { app.mapHub('/hub', hub) }, { enableDetailedErrors: true })
  const c = await connect(t, `${baseUrl}/hub`)
  const failed = await streamOutcome(c, 'FailMidway')
  t.equal(failed.error?.message, `${STREAM_FAILED} Error: secret internals`)
})

t.test('stream arguments are validated', async (t) => {
  const { baseUrl } = await startApp(t, (app) => { app.mapHub('/hub', hub) })
  const c = await connect(t, `${baseUrl}/hub`)
  const bad = await streamOutcome(c, 'Counter', -1, 0)
  t.same(bad.items, [])
  t.match(bad.error?.message, /^Failed to invoke 'Counter' due to an error on the server\. InvalidDataException: Error binding arguments\. Argument 0: /)
})

t.test('streaming and non-streaming methods cannot be mixed up', async (t) => {
  const { baseUrl } = await startApp(t, (app) => { app.mapHub('/hub', hub) })
  const c = await connect(t, `${baseUrl}/hub`)

  await t.rejects(c.invoke('Counter', 1, 0), {
    message: "The client attempted to invoke the streaming 'Counter' method with a non-streaming invocation."
  })
  await t.rejects(c.invoke('counter', 1, 0), {
    message: "The client attempted to invoke the streaming 'Counter' method with a non-streaming invocation."
  }, 'the text names the declared method')

  const wrong = await streamOutcome(c, 'Add', 1, 2)
  t.same(wrong.items, [])
  t.equal(wrong.error?.message, "The client attempted to invoke the non-streaming 'Add' method with a streaming invocation.")

  t.equal(await c.invoke('Add', 1, 2), 3, 'the connection still works')
})

/** A hub whose endless stream reports what the server saw of its cancellation. */
function cancellableHub () {
  const probe = {
    abortSeen: deferred(),
    finallyRan: deferred<boolean>(),
    /** Released by the test; the ignoring generator waits on it between items. */
    gate: deferred(),
    yielded: 0
  }
  const h = defineHub({
    methods: {
      Endless: {
        args: [],
        stream: true,
        async * handler (hub) {
          const aborted = new Promise<void>((resolve) => {
            hub.signal.addEventListener('abort', () => { resolve() }, { once: true })
          })
          void aborted.then(() => { probe.abortSeen.resolve() })
          try {
            let i = 0
            while (!hub.signal.aborted) {
              probe.yielded++
              yield i++
              // Without an item budget from the test, only cancellation moves it on.
              await aborted
            }
          } finally {
            probe.finallyRan.resolve(hub.signal.aborted)
          }
        }
      },
      // Ignores hub.signal: only the dispatcher stopping to pull can end it.
      IgnoresSignal: {
        args: [],
        stream: true,
        async * handler (hub) {
          hub.signal.addEventListener('abort', () => { probe.abortSeen.resolve() }, { once: true })
          try {
            for (let i = 0; ; i++) {
              probe.yielded++
              yield i
              await probe.gate.promise
            }
          } finally {
            probe.finallyRan.resolve(hub.signal.aborted)
          }
        }
      },
      Echo: { args: [z.string()], handler: (_hub, s) => s }
    }
  })
  return { hub: h, probe }
}

t.test('disposing the subscription cancels the stream: hub.signal aborts and the generator ends', { timeout }, async (t) => {
  const { hub: h, probe } = cancellableHub()
  const { baseUrl } = await startApp(t, (app) => { app.mapHub('/hub', h) })
  const c = await connect(t, `${baseUrl}/hub`)

  const received: unknown[] = []
  const firstItem = deferred()
  const subscription = c.stream('Endless').subscribe({
    next: (item) => { received.push(item); firstItem.resolve() },
    complete: () => {},
    error: () => {}
  })
  await firstItem.promise
  subscription.dispose() // sends CancelInvocation

  await probe.abortSeen.promise
  t.equal(await probe.finallyRan.promise, true, "the generator's finally ran with hub.signal aborted")
  t.same(received, [0])
  t.equal(probe.yielded, 1, 'nothing more was produced after the cancellation')
  t.equal(await c.invoke('Echo', 'after'), 'after', 'the connection goes on')
})

t.test('a cancelled stream whose generator ignores the signal is closed at its next item', { timeout }, async (t) => {
  const { hub: h, probe } = cancellableHub()
  const { baseUrl } = await startApp(t, (app) => { app.mapHub('/hub', h) })
  const c = await connect(t, `${baseUrl}/hub`)

  const firstItem = deferred()
  const subscription = c.stream('IgnoresSignal').subscribe({
    next: () => { firstItem.resolve() },
    complete: () => {},
    error: () => {}
  })
  await firstItem.promise
  subscription.dispose()
  await probe.abortSeen.promise
  // Only now let the generator produce again: the dispatcher must stop pulling and call return().
  probe.gate.resolve()
  t.equal(await probe.finallyRan.promise, true, "the generator's finally ran")
  t.equal(probe.yielded, 2, 'the generator was not resumed after the item that followed the cancellation')
})

t.test('after CancelInvocation no more items are sent, only the final Completion', { timeout }, async (t) => {
  const { hub: h, probe } = cancellableHub()
  const { wsUrl } = await startApp(t, (app) => { app.mapHub('/hub', h) })
  const raw = await rawConnect(t, `${wsUrl}/hub`, { handshake: true, ignorePings: true })

  raw.send({ invocationId: '7', target: 'IgnoresSignal', arguments: [], type: 4 })
  t.same(await raw.next(), { type: 2, invocationId: '7', item: 0 })
  raw.send({ invocationId: '7', type: 5 })
  await probe.abortSeen.promise
  // The generator now produces item 1, which must not be sent.
  probe.gate.resolve()
  t.equal(await probe.finallyRan.promise, true)
  const last = await raw.next()
  t.match(last, { type: 3, invocationId: '7' }, 'the stream still ends with its Completion')
  t.notOk('item' in last || 'result' in last)
})

t.test('the end of the connection aborts a running stream', { timeout }, async (t) => {
  const { hub: h, probe } = cancellableHub()
  const { baseUrl } = await startApp(t, (app) => { app.mapHub('/hub', h) })
  const c = await connect(t, `${baseUrl}/hub`)

  const firstItem = deferred()
  c.stream('Endless').subscribe({ next: () => { firstItem.resolve() }, complete: () => {}, error: () => {} })
  await firstItem.promise
  await c.stop()
  await probe.abortSeen.promise
  t.equal(await probe.finallyRan.promise, true)
})

t.test('client-to-server streams', async (t) => {
  const { baseUrl } = await startApp(t, (app) => { app.mapHub('/hub', hub) })
  const c = await connect(t, `${baseUrl}/hub`)

  const subject = new signalR.Subject<string>()
  const result = c.invoke('Concat', subject)
  subject.next('a')
  subject.next('b')
  subject.next('c')
  subject.complete()
  t.equal(await result, 'abc', 'the items arrive in order and the stream ends on complete()')

  const empty = new signalR.Subject<string>()
  const emptyResult = c.invoke('Concat', empty)
  empty.complete()
  t.equal(await emptyResult, '', 'an empty upload')

  const words = new signalR.Subject<string>()
  const numbers = new signalR.Subject<number>()
  const zipped = c.invoke('Zip', words, ' = ', numbers)
  numbers.next(1)
  words.next('one')
  numbers.next(2)
  words.next('+two')
  words.complete()
  numbers.complete()
  t.equal(await zipped, 'one+two = 3', 'two upload streams around a plain argument')
})

t.test('an upload item that fails its schema fails the invocation', async (t) => {
  const { baseUrl } = await startApp(t, (app) => { app.mapHub('/hub', hub) })
  const c = await connect(t, `${baseUrl}/hub`)

  const subject = new signalR.Subject<unknown>()
  const result = c.invoke('Concat', subject)
  subject.next('fine')
  subject.next(42)
  subject.complete()
  await t.rejects(result, { message: /^An unexpected error occurred invoking 'Concat' on the server\. HubException: Stream item is invalid: .*expected string/ })
  t.equal(await c.invoke('Echo', 'ok'), 'ok', 'the connection still works')
})

t.test('an upload the client ends with an error reaches the hub method as an error', async (t) => {
  const { baseUrl } = await startApp(t, (app) => { app.mapHub('/hub', hub) })
  const c = await connect(t, `${baseUrl}/hub`)

  const caught = new signalR.Subject<string>()
  const caughtResult = c.invoke('ConcatCatching', caught)
  caught.next('a')
  caught.error(new Error('client gave up'))
  t.equal(await caughtResult, 'after a the hub saw: client gave up')

  const uncaught = new signalR.Subject<string>()
  const uncaughtResult = c.invoke('Concat', uncaught)
  uncaught.error(new Error('client gave up'))
  await t.rejects(uncaughtResult, { message: /^An unexpected error occurred invoking 'Concat' on the server\./ },
    'not caught by the method, it fails the invocation')
})

t.test('items sent after the method returned are ignored', async (t) => {
  const { baseUrl } = await startApp(t, (app) => { app.mapHub('/hub', hub) })
  const c = await connect(t, `${baseUrl}/hub`)

  const subject = new signalR.Subject<string>()
  const result = c.invoke('First', subject)
  subject.next('first')
  t.equal(await result, 'first')
  subject.next('late')
  subject.next('later')
  subject.complete()
  t.equal(await c.invoke('Echo', 'ok'), 'ok', 'late items and the late completion do not disturb the connection')
})

t.test('a wrong number of upload streams is refused', async (t) => {
  const { baseUrl } = await startApp(t, (app) => { app.mapHub('/hub', hub) })
  const c = await connect(t, `${baseUrl}/hub`)

  await t.rejects(c.invoke('Concat'), {
    message: "An unexpected error occurred invoking 'Concat' on the server. HubException: Client sent 0 stream(s), Hub method expects 1."
  })
  const s1 = new signalR.Subject<string>()
  const s2 = new signalR.Subject<string>()
  // Not side by side: the official client skips the second of two adjacent stream arguments.
  await t.rejects(c.invoke('Concat', s1, 'x', s2), {
    message: "An unexpected error occurred invoking 'Concat' on the server. HubException: Client sent 2 stream(s), Hub method expects 1."
  })
  const s3 = new signalR.Subject<string>()
  await t.rejects(c.invoke('Echo', s3), {
    message: "An unexpected error occurred invoking 'Echo' on the server. HubException: Client sent 1 stream(s), Hub method expects 0."
  })
  s1.complete()
  s2.complete()
  s3.complete()
  t.equal(await c.invoke('Echo', 'ok'), 'ok')
})

/** A one-at-a-time gate: the handler waits at it, the test opens it once per item. */
class Turnstile {
  private readonly waiting: Array<() => void> = []
  private readonly arrivals: Array<() => void> = []

  wait (): Promise<void> {
    return new Promise((resolve) => {
      this.waiting.push(resolve)
      this.arrivals.shift()?.()
    })
  }

  /** Resolves once someone waits at the gate. */
  arrived (): Promise<void> {
    if (this.waiting.length > 0) return Promise.resolve()
    return new Promise((resolve) => { this.arrivals.push(resolve) })
  }

  open (): void {
    this.waiting.shift()!()
  }
}

/**
 * SlowConcat takes one item, then waits for the test before it pulls the next.
 * Ping answers with how many items SlowConcat had pulled when Ping ran, which
 * shows how far the server had read the connection.
 */
function slowHub () {
  const state = { pulls: 0, turnstile: new Turnstile() }
  const h = defineHub({
    methods: {
      SlowConcat: {
        args: [clientStream(z.string())],
        async handler (_hub, items) {
          const iterator = items[Symbol.asyncIterator]()
          let s = ''
          for (;;) {
            state.pulls++
            const step = await iterator.next()
            if (step.done === true) return s
            s += step.value
            await state.turnstile.wait()
          }
        }
      },
      Ping: { args: [], handler: () => state.pulls }
    }
  })
  return { hub: h, state }
}

const CAPACITY = 2
const ITEMS = ['a', 'b', 'c', 'd', 'e', 'f']

t.test('streamBufferCapacity: a full upload buffer stops the server reading the connection', { timeout }, async (t) => {
  const { hub: h, state } = slowHub()
  // Two slots, so that Ping could run next to SlowConcat: only the full stream buffer may hold it back.
  const { baseUrl } = await startApp(t, (app) => { app.mapHub('/hub', h) },
    { streamBufferCapacity: CAPACITY, maximumParallelInvocationsPerClient: 2 })
  const c = await connect(t, `${baseUrl}/hub`)

  const subject = new signalR.Subject<string>()
  const result = c.invoke('SlowConcat', subject)
  for (const item of ITEMS) subject.next(item)
  // The client chains each stream item on promises that settle within the
  // microtask queue; one macrotask turn puts all of them on the socket before Ping.
  await new Promise((resolve) => setImmediate(resolve))
  const ping = c.invoke('Ping')

  // Let SlowConcat take one item at a time.
  for (let i = 0; i < ITEMS.length; i++) {
    await state.turnstile.arrived()
    state.turnstile.open()
  }
  subject.complete()
  t.equal(await result, ITEMS.join(''), 'every item arrived, in order')
  const pullsWhenPingRan = await ping
  // 1 item went straight to the waiting reader, CAPACITY waited in the buffer;
  // the rest, and Ping behind them, stayed unread until the handler pulled.
  t.ok(pullsWhenPingRan >= ITEMS.length - CAPACITY,
    `Ping ran only after SlowConcat had pulled ${ITEMS.length - CAPACITY} items (it ran at pull ${pullsWhenPingRan})`)
})

t.test('streamBufferCapacity, byte-exact: everything in one frame, Ping waits behind the full buffer', { timeout }, async (t) => {
  const { hub: h, state } = slowHub()
  const { wsUrl } = await startApp(t, (app) => { app.mapHub('/hub', h) },
    { streamBufferCapacity: CAPACITY, maximumParallelInvocationsPerClient: 2 })
  const raw = await rawConnect(t, `${wsUrl}/hub`, { handshake: true, ignorePings: true })

  // One WebSocket message: the server has every record before it dispatches the first.
  raw.send(
    { invocationId: '1', target: 'SlowConcat', arguments: [], streamIds: ['0'], type: 1 },
    ...ITEMS.map((item): RawRecord => ({ invocationId: '0', item, type: 2 })),
    { invocationId: '2', target: 'Ping', arguments: [], type: 1 },
    { invocationId: '0', type: 3 }
  )

  for (let i = 0; i < ITEMS.length; i++) {
    await state.turnstile.arrived()
    if (i === 0) t.equal(state.pulls, 1, 'SlowConcat holds its first item')
    state.turnstile.open()
  }
  const answers = new Map<string, RawRecord>()
  while (answers.size < 2) {
    const message = await raw.next()
    if (message.type === 3) answers.set(message.invocationId as string, message)
  }
  t.same(answers.get('1'), { type: 3, invocationId: '1', result: ITEMS.join('') })
  t.same(answers.get('2'), { type: 3, invocationId: '2', result: ITEMS.length - CAPACITY },
    'Ping ran exactly when the buffer had room for the last item')
})
