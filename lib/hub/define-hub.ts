import type { z } from 'zod'
import { codes } from '../errors.js'
import { kClientStream, kMethodTable } from '../symbols.js'
import { isHookName } from './hooks.js'
import { assertNoCaseDuplicates, buildMethodTable, isZodSchema, type MethodTable } from './method-table.js'
import type {
  ArgSchemas, CheckMethodResults, ClientSpec, ClientStreamSchema, HubDefinition, HubLifecycle,
  MethodDefinition, UntypedClient
} from './types.js'

export interface HubDefinitionInput<A extends Record<string, ArgSchemas>, M, C> extends HubLifecycle<C> {
  /** Stable name for logs and scale-out channels; defaults to the first mapped path. */
  name?: string
  /** What the server calls on clients; types `send` and `invoke`. */
  client?: C
  methods: { [K in keyof A]: MethodDefinition<A[K], C> } & M & CheckMethodResults<M>
}

/**
 * Defines a hub: its methods with zod-validated positional arguments, the
 * client methods it may call, and lifecycle hooks. Handler parameter types are
 * inferred from the `args` schemas.
 *
 * @example
 * const chat = defineHub({
 *   client: { ReceiveMessage: [z.string(), z.string()] },
 *   methods: {
 *     SendMessage: {
 *       args: [z.string(), z.string()],
 *       handler: (hub, user, message) => hub.clients.all.send('ReceiveMessage', user, message)
 *     }
 *   }
 * })
 */
export function defineHub<
  const A extends Record<string, ArgSchemas>,
  const M,
  const C extends ClientSpec = UntypedClient
> (definition: HubDefinitionInput<A, M, C>): HubDefinition<M, C> {
  if (definition === null || typeof definition !== 'object') {
    throw new codes.SIGNALR_ERR_INVALID_HUB('defineHub', 'expected a hub definition object')
  }
  const { name, client, methods, onConnected, onDisconnected, authorize, hooks } = definition
  if (name !== undefined && (typeof name !== 'string' || name.length === 0)) {
    throw new codes.SIGNALR_ERR_INVALID_HUB('defineHub', '`name` must be a non-empty string')
  }
  if (onConnected !== undefined && typeof onConnected !== 'function') {
    throw new codes.SIGNALR_ERR_INVALID_HUB('defineHub', '`onConnected` must be a function')
  }
  if (onDisconnected !== undefined && typeof onDisconnected !== 'function') {
    throw new codes.SIGNALR_ERR_INVALID_HUB('defineHub', '`onDisconnected` must be a function')
  }
  if (authorize !== undefined && typeof authorize !== 'function') {
    throw new codes.SIGNALR_ERR_INVALID_HUB('defineHub', '`authorize` must be a function')
  }
  if (hooks !== undefined) {
    if (hooks === null || typeof hooks !== 'object') throw new codes.SIGNALR_ERR_INVALID_HUB('defineHub', '`hooks` must be an object')
    for (const [key, fn] of Object.entries(hooks)) {
      if (!isHookName(key)) throw new codes.SIGNALR_ERR_INVALID_HUB('defineHub', `unknown hook '${key}'`)
      if (typeof fn !== 'function') throw new codes.SIGNALR_ERR_INVALID_HUB('defineHub', `hook '${key}' must be a function`)
    }
  }
  if (client !== undefined) {
    if (client === null || typeof client !== 'object') {
      throw new codes.SIGNALR_ERR_INVALID_HUB('defineHub', '`client` must map method names to argument schemas')
    }
    assertNoCaseDuplicates(Object.keys(client), 'client methods')
  }
  const table = buildMethodTable(methods as Record<string, unknown>)
  const hub = {
    name,
    client,
    methods,
    onConnected,
    onDisconnected,
    authorize,
    hooks,
    [kMethodTable]: table
  }
  return Object.freeze(hub) as unknown as HubDefinition<M, C>
}

/** The method table of a definition made by `defineHub`, or undefined for anything else. */
export function methodTableOf (hub: unknown): MethodTable | undefined {
  if (hub === null || typeof hub !== 'object') return undefined
  return (hub as { [kMethodTable]?: MethodTable })[kMethodTable]
}

/**
 * Marks a client-to-server stream argument. The handler receives an
 * AsyncIterable; every item is checked against `item` before it is yielded.
 *
 * @example
 * Concat: { args: [clientStream(z.string())], async handler (hub, items) { ... } }
 */
export function clientStream<S extends z.ZodType> (item: S): ClientStreamSchema<S> {
  if (!isZodSchema(item)) {
    throw new codes.SIGNALR_ERR_INVALID_HUB('clientStream', 'expected a zod schema for the stream items')
  }
  return Object.freeze({ [kClientStream]: true, item }) as unknown as ClientStreamSchema<S>
}
