import type { FastifyBaseLogger, FastifyRequest } from 'fastify'
import type { z } from 'zod'
import type { TransportKind } from '../transports/names.js'

declare const kClientStreamBrand: unique symbol

/** A client-to-server stream argument: made by `clientStream(itemSchema)`. */
export interface ClientStreamSchema<S extends z.ZodType = z.ZodType> {
  readonly [kClientStreamBrand]: true
  readonly item: S
}

export type ArgSchema = z.ZodType | ClientStreamSchema
export type ArgSchemas = readonly ArgSchema[]

/** What a handler receives for one argument schema (after parsing). */
export type InferArg<S> =
  S extends ClientStreamSchema<infer I> ? AsyncIterable<z.output<I>>
    : S extends z.ZodType ? z.output<S>
      : never

/** Handler parameters after the `hub` parameter, from the `args` schemas. */
export type InferHandlerArgs<A extends ArgSchemas> = { -readonly [K in keyof A]: InferArg<A[K]> }

/** What a client passes for one argument schema (before parsing). */
export type InferInputArg<S> =
  S extends ClientStreamSchema<infer I> ? AsyncIterable<z.input<I>>
    : S extends z.ZodType ? z.input<S>
      : never

export type InferInputArgs<A extends ArgSchemas> = { -readonly [K in keyof A]: InferInputArg<A[K]> }

// ------------------------------------------------------------------ client side of a hub

/** How the server may call a client method: argument schemas, optionally a result schema. */
export type ClientMethodSpec =
  | readonly z.ZodType[]
  | { readonly args: readonly z.ZodType[], readonly returns?: z.ZodType }

export type ClientSpec = Record<string, ClientMethodSpec>

/** A hub without a `client` map: any method name, any arguments. */
export interface UntypedClient { [method: string]: readonly z.ZodType[] }

type ClientArgSchemas<M> = M extends readonly z.ZodType[] ? M : M extends { readonly args: infer A } ? A : never

export type InferClientArgs<M> = ClientArgSchemas<M> extends infer A extends readonly z.ZodType[]
  ? { -readonly [K in keyof A]: z.input<A[K]> }
  : never

export type InferClientResult<M> = M extends { readonly returns: infer R extends z.ZodType } ? z.output<R> : unknown

/** A set of connections the server can send to. */
export interface ClientProxy<C> {
  /**
   * Calls `method` on every connection of this selector, fire-and-forget.
   * Resolves once the message is handed to every local transport (and the backplane).
   * @example await hub.clients.group('news').send('ReceiveMessage', 'system', 'hi')
   */
  send<K extends keyof C & string>(method: K, ...args: InferClientArgs<C[K]>): Promise<void>
}

/** One connection: can also await a value returned by the client's handler (a client result). */
export interface SingleClientProxy<C> extends ClientProxy<C> {
  /**
   * Calls the client's `method` handler and resolves with what it returns.
   * Rejects when the client's handler throws, when it has none, when the
   * connection ends, or after `clientResultTimeout`.
   * @example const answer = await hub.clients.caller.invoke('GetMessage')
   */
  invoke<K extends keyof C & string>(method: K, ...args: InferClientArgs<C[K]>): Promise<InferClientResult<C[K]>>
}

/** The selectors usable anywhere, including from `app.signalr.hubContext(hub)` (IHubClients). */
export interface HubClients<C> {
  readonly all: ClientProxy<C>
  client (connectionId: string): SingleClientProxy<C>
  clients (connectionIds: readonly string[]): ClientProxy<C>
  allExcept (excludedConnectionIds: readonly string[]): ClientProxy<C>
  group (groupName: string): ClientProxy<C>
  groups (groupNames: readonly string[]): ClientProxy<C>
  groupExcept (groupName: string, excludedConnectionIds: readonly string[]): ClientProxy<C>
  user (userId: string): ClientProxy<C>
  users (userIds: readonly string[]): ClientProxy<C>
}

/** The selectors inside a hub method: relative to the calling connection too (IHubCallerClients). */
export interface HubCallerClients<C> extends HubClients<C> {
  readonly caller: SingleClientProxy<C>
  readonly others: ClientProxy<C>
  othersInGroup (groupName: string): ClientProxy<C>
}

/** Group membership (IGroupManager). Only server code can change it. */
export interface GroupManager {
  add (connectionId: string, groupName: string): Promise<void>
  remove (connectionId: string, groupName: string): Promise<void>
}

export type { TransportKind } from '../transports/names.js'

/** The `hub` parameter of every handler and lifecycle hook (HubCallerContext + Clients + Groups). */
export interface Hub<C = UntypedClient> {
  /** This connection's public id. */
  readonly connectionId: string
  /** From `getUserId(request)`, or undefined. */
  readonly userId: string | undefined
  /** The request that opened the transport (headers, query, cookies, `user`). */
  readonly request: FastifyRequest
  readonly transport: TransportKind
  /** Lives as long as the connection. */
  readonly items: Map<unknown, unknown>
  /** Aborted when this invocation is cancelled or the connection ends. */
  readonly signal: AbortSignal
  /** Closes this connection. */
  abort (): void
  /** A child of the Fastify logger bound to the hub and connection id. */
  readonly log: FastifyBaseLogger
  readonly clients: HubCallerClients<C>
  readonly groups: GroupManager
}

// ------------------------------------------------------------------ defining hubs

/** One method as written in `defineHub`; its handler is typed from `args`. */
export interface MethodDefinition<A extends ArgSchemas = ArgSchemas, C = UntypedClient> {
  /** Positional argument schemas; `clientStream(schema)` marks an upload stream. */
  args: A
  /** Optional result schema: documents and checks the value returned. */
  returns?: z.ZodType
  /** `true` for a server-to-client stream: the handler returns an AsyncIterable. */
  stream?: boolean
  /** This method's own call limit per connection, on top of the hub's `rateLimit` option. */
  rateLimit?: { max: number, timeWindow: number }
  /** May this caller use the method? False refuses with SignalR's unauthorized error. */
  authorize?: (hub: Hub<C>) => boolean | Promise<boolean>
  handler: (hub: Hub<C>, ...args: InferHandlerArgs<A>) => unknown
}

/** Checks what handlers return against `stream` and `returns`. */
export type CheckMethodResults<M> = {
  [K in keyof M]: M[K] extends { stream: true }
    ? { handler: (...args: any[]) => AsyncIterable<unknown> | Iterable<unknown> | PromiseLike<AsyncIterable<unknown> | Iterable<unknown>> }
    : M[K] extends { returns: infer R extends z.ZodType }
      ? { handler: (...args: any[]) => z.input<R> | PromiseLike<z.input<R>> }
      : unknown
}

export interface HubLifecycle<C> {
  /** Checked before every method of the hub (and each method's own `authorize`). */
  authorize?: (hub: Hub<C>) => boolean | Promise<boolean>
  /** Hooks around this hub's work (SignalR's hub filters). */
  hooks?: HubHooks<C>
  /** Runs once the handshake is done; throwing refuses the connection. */
  onConnected?: (hub: Hub<C>) => void | Promise<void>
  /** Runs when the connection ends; `error` is undefined on a clean close. */
  onDisconnected?: (hub: Hub<C>, error: Error | undefined) => void | Promise<void>
}

/** What `defineHub` returns: a frozen, typed hub definition to pass to `mapHub`. */
export interface HubDefinition<M = Record<string, MethodDefinition<any, any>>, C = UntypedClient> extends HubLifecycle<C> {
  readonly name: string | undefined
  readonly client: C | undefined
  readonly methods: M
}

/** Any hub definition, whatever its methods and client map. */
export type AnyHubDefinition = HubDefinition<any, any>

export type InferHubClient<H> = H extends HubDefinition<any, infer C> ? C : never
export type InferHubMethods<H> = H extends HubDefinition<infer M, any> ? M : never

/** Parameters a client passes to method `K` of hub `H` (zod inputs). */
export type InferMethodArgs<H, K extends keyof InferHubMethods<H>> =
  InferHubMethods<H>[K] extends { args: infer A extends ArgSchemas } ? InferInputArgs<A> : never

/** What a client receives from method `K` of hub `H`. */
export type InferMethodResult<H, K extends keyof InferHubMethods<H>> =
  InferHubMethods<H>[K] extends { returns: infer R extends z.ZodType } ? z.output<R>
    : InferHubMethods<H>[K] extends { handler: (...args: any[]) => infer Ret } ? Awaited<Ret>
      : never

/** The item type of stream method `K` of hub `H`. */
export type InferStreamItem<H, K extends keyof InferHubMethods<H>> =
  InferHubMethods<H>[K] extends { handler: (...args: any[]) => infer Ret }
    ? Awaited<Ret> extends AsyncIterable<infer T> ? T : Awaited<Ret> extends Iterable<infer T> ? T : never
    : never

/** What `beforeInvocation` hooks see. Throw (a HubError, for a message the caller sees) to refuse the call. */
export interface InvocationEvent<C = any> {
  readonly hub: Hub<C>
  /** The declared method name. */
  readonly method: string
  /** The arguments after validation (upload streams as their AsyncIterables). */
  readonly args: readonly unknown[]
}

/** What `afterInvocation` hooks see: the outcome and how long the handler took. */
export interface InvocationResultEvent<C = any> extends InvocationEvent<C> {
  readonly result?: unknown
  readonly error?: unknown
  readonly durationMs: number
}

/** Hooks around hub work (SignalR's hub filters), per hub in `defineHub` or for all hubs with `app.signalr.addHook`. */
export interface HubHooks<C = any> {
  beforeInvocation?: (event: InvocationEvent<C>) => void | Promise<void>
  afterInvocation?: (event: InvocationResultEvent<C>) => void | Promise<void>
  onConnect?: (hub: Hub<C>) => void | Promise<void>
  onDisconnect?: (hub: Hub<C>, error: Error | undefined) => void | Promise<void>
}
