/**
 * `fastify-signalr/client`: the types of a hub definition over an official
 * `@microsoft/signalr` connection. Only *types* come from the server side, so a
 * browser bundle of this file holds no server code.
 */
import { Subject, type HubConnection, type IStreamResult, type ISubscription } from '@microsoft/signalr'
import type {
  InferClientArgs, InferClientResult, InferHubClient, InferHubMethods, InferMethodArgs, InferMethodResult,
  InferStreamItem
} from '../hub/types.js'

type Methods<H> = InferHubMethods<H>
type StreamKeys<H> = { [K in keyof Methods<H>]: Methods<H>[K] extends { stream: true } ? K : never }[keyof Methods<H>]
type CallKeys<H> = Exclude<keyof Methods<H>, StreamKeys<H>>
type ClientOf<H> = InferHubClient<H>

/** A client handler may answer a client result (`invoke` on the server side). */
type ClientHandler<M> = (...args: InferClientArgs<M>) => InferClientResult<M> | Promise<InferClientResult<M>> | void

export interface TypedHub<H> {
  /** The wrapped official connection (start, stop, state, onclose...). */
  readonly connection: HubConnection
  /** `connection.invoke`, typed: arguments from zod inputs, result from `returns` or the handler. */
  readonly invoke: { [K in CallKeys<H> & string]: (...args: InferMethodArgs<H, K>) => Promise<InferMethodResult<H, K>> }
  /** `connection.send` (fire-and-forget), typed. */
  readonly send: { [K in CallKeys<H> & string]: (...args: InferMethodArgs<H, K>) => Promise<void> }
  /** `connection.stream` as an AsyncIterable; leaving the loop early cancels the stream on the server. */
  readonly stream: { [K in StreamKeys<H> & string]: (...args: InferMethodArgs<H, K>) => AsyncIterableIterator<InferStreamItem<H, K>> }
  /** `connection.on` for the hub's `client` methods; returns a function that removes the handler. */
  readonly on: { [K in keyof ClientOf<H> & string]: (handler: ClientHandler<ClientOf<H>[K]>) => () => void }
  /** `connection.off`, typed. */
  readonly off: { [K in keyof ClientOf<H> & string]: (handler?: ClientHandler<ClientOf<H>[K]>) => void }
}

/**
 * Wraps an official connection with the types of hub `H` (`typeof myHub`).
 *
 * @example
 * const hub = typedHub<typeof chat>(connection)
 * hub.on.ReceiveMessage((user, message) => {})
 * const sum = await hub.invoke.Add(1, 2)
 * for await (const n of hub.stream.Counter(10, 0)) {}
 */
export function typedHub<H> (connection: HubConnection): TypedHub<H> {
  return {
    connection,
    invoke: methodProxy((name) => (...args: unknown[]) => connection.invoke(name, ...toStreams(args))),
    send: methodProxy((name) => (...args: unknown[]) => connection.send(name, ...toStreams(args))),
    stream: methodProxy((name) => (...args: unknown[]) => iterate(connection.stream(name, ...toStreams(args)))),
    on: methodProxy((name) => (handler: (...args: any[]) => any) => {
      connection.on(name, handler)
      return () => { connection.off(name, handler) }
    }),
    off: methodProxy((name) => (handler?: (...args: any[]) => any) => {
      if (handler === undefined) connection.off(name)
      else connection.off(name, handler)
    })
  } as unknown as TypedHub<H>
}

/**
 * A memoized proxy: `proxy.Foo` is made once. `then` and symbols are not
 * methods, so awaiting or inspecting the proxy never calls the hub.
 */
function methodProxy<F> (make: (name: string) => F): Record<string, F> {
  const cache = new Map<string, F>()
  return new Proxy({} as Record<string, F>, {
    get (_target, property) {
      if (typeof property !== 'string' || property === 'then') return undefined
      let method = cache.get(property)
      if (method === undefined) cache.set(property, method = make(property))
      return method
    }
  })
}

function isAsyncIterable (value: unknown): value is AsyncIterable<unknown> {
  return value !== null && typeof value === 'object' && typeof (value as AsyncIterable<unknown>)[Symbol.asyncIterator] === 'function'
}

/** The official client uploads Subjects; typed calls take any AsyncIterable for `clientStream` arguments. */
function toStreams (args: unknown[]): unknown[] {
  return args.map((arg) => {
    if (!isAsyncIterable(arg) || arg instanceof Subject) return arg
    const subject = new Subject<unknown>()
    void (async () => {
      try {
        for await (const item of arg) subject.next(item)
        subject.complete()
      } catch (err) {
        subject.error(err)
      }
    })()
    return subject
  })
}

/** An official stream result as an AsyncIterableIterator with a small queue. */
function iterate<T> (result: IStreamResult<T>): AsyncIterableIterator<T> {
  const items: T[] = []
  let done = false
  let failure: unknown = null
  let wake: (() => void) | null = null
  const notify = (): void => {
    const resolve = wake
    wake = null
    resolve?.()
  }
  const subscription: ISubscription<T> = result.subscribe({
    next (value) { items.push(value); notify() },
    complete () { done = true; notify() },
    error (err) { failure = err; done = true; notify() }
  })
  const iterator: AsyncIterableIterator<T> = {
    async next () {
      // `done` is set by the subscriber's callbacks while this loop awaits.
      // eslint-disable-next-line no-unmodified-loop-condition
      while (items.length === 0 && !done) await new Promise<void>((resolve) => { wake = resolve })
      if (items.length > 0) return { value: items.shift()!, done: false }
      if (failure !== null) throw failure
      return { value: undefined, done: true }
    },
    async return () {
      if (!done) {
        done = true
        subscription.dispose()
      }
      return { value: undefined, done: true }
    },
    [Symbol.asyncIterator] () { return iterator }
  }
  return iterator
}
