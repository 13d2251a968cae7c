import type { FastifyBaseLogger, FastifyRequest } from 'fastify'
import type { HubRuntime } from '../hub/hub-runtime.js'
import type { MethodDescriptor } from '../hub/method-table.js'
import type { SerializedMessage } from '../lifetime/serialized-message.js'
import type { ResolvedHubOptions } from '../options.js'
import type { HubProtocol } from '../protocol/hub-protocol.js'
import type { HubMessage } from '../protocol/messages.js'
import type { ConnectionTelemetry } from '../telemetry.js'
import type { ClientResults } from './client-results.js'
import type { InvocationLimit } from './invocation-limit.js'
import type { RateCounter } from './rate-limit.js'
import type { ClientStreamReader } from './streams.js'

/** An invocation whose signal the connection aborts (CancelInvocation, or the end of the connection). */
export interface Cancellable {
  abortSignal (): void
}

/**
 * What the dispatcher and the `hub` object write to: one connection's
 * invocation side (lib/connection/connection.ts implements it). Declared here,
 * by its users, so they never depend on the connection class.
 */
export interface InvocationTarget {
  readonly connectionId: string
  readonly userId: string | undefined
  readonly request: FastifyRequest
  readonly transport: { readonly kind: string }
  readonly runtime: HubRuntime
  readonly options: ResolvedHubOptions
  readonly log: FastifyBaseLogger
  /** The protocol the handshake chose (set before any invocation runs). */
  readonly protocol: HubProtocol | null
  /** The connection's span, the parent of invocation spans. */
  readonly telemetry: ConnectionTelemetry | null
  readonly isClosed: boolean
  /** True while `onConnected` runs. */
  readonly inOnConnected: boolean
  /** `hub.items`. */
  readonly items: Map<unknown, unknown>
  /** The `hub` object of onConnected and onDisconnected. */
  readonly lifecycleContext: object
  /** Aborted when the connection ends: the signal of the lifecycle hooks. */
  readonly controller: AbortController
  /** Invocations whose `hub.signal` was read. */
  readonly liveInvocations: Set<Cancellable>
  /** Server-to-client streams in progress, by invocation id. */
  readonly streamsOut: Map<string, Cancellable>
  /** Client-to-server streams, by stream id. */
  readonly streamsIn: Map<string, ClientStreamReader>
  readonly clientResults: ClientResults
  readonly limit: InvocationLimit
  /** Some call limit applies. */
  readonly rateLimited: boolean
  readonly rateCounter: RateCounter | null
  methodRateCounter (method: MethodDescriptor): RateCounter
  /** A producer should wait for `waitForDrain`. */
  readonly shouldWait: boolean
  waitForDrain (): Promise<void>
  drained (): Promise<void> | null
  /** Wakes a connection that paused reading (a stream buffer has room). */
  readonly wake: () => void
  /** Resumes reading after a slot or buffer freed up. */
  unblock (): void
  /** The plugin's clock. */
  clock (): number
  sendMessage (message: HubMessage): void
  sendSerialized (message: SerializedMessage): void
  /** A one-receiver record the protocol has already framed. */
  sendEncoded (bytes: Buffer): void
  invokeClient (method: string, args: unknown[]): Promise<unknown>
  onClientClose (error: string | undefined): void
  closeWithError (err: unknown): void
  abort (): void
}
