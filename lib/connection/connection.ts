import type { FastifyRequest } from 'fastify'
import type { RouteContext } from '../http/route-context.js'
import { InvocationContext } from '../hub/caller-context.js'
import type { MethodDescriptor } from '../hub/method-table.js'
import type { SerializedMessage } from '../lifetime/serialized-message.js'
import { MessageType, type HubMessage } from '../protocol/messages.js'
import type { Transport } from '../transports/transport.js'
import { ClientResults } from '../dispatcher/client-results.js'
import { codes } from '../errors.js'
import { dispatchMessage } from '../dispatcher/dispatcher.js'
import { InvocationLimit } from '../dispatcher/invocation-limit.js'
import type { Cancellable, InvocationTarget } from '../dispatcher/invocation-target.js'
import { RateCounter } from '../dispatcher/rate-limit.js'
import type { ClientStreamReader } from '../dispatcher/streams.js'
import { HubHandler } from './hub-handler.js'
import { isTrackable } from './reconnect-buffer.js'
import { CONNECTED, type SessionStore } from './session.js'

/**
 * One client's hub connection, as the dispatcher and the `hub` object see it
 * (the InvocationTarget): sending messages, invocation slots and rate limits,
 * streams both ways, client results and their deadlines. The hub layer below
 * (hub-handler.ts) reads and ends the connection; the session under it
 * (session.ts) owns the transport.
 */
export class HubConnection extends HubHandler implements InvocationTarget {
  readonly groupNames = new Set<string>()
  readonly limit: InvocationLimit
  /** The connection-wide call limit (the `rateLimit` option), if any. */
  readonly rateCounter: RateCounter | null
  /** True when any call limit applies, so the dispatcher can skip the check otherwise. */
  readonly rateLimited: boolean
  protected readonly statefulRequested: boolean
  // Idle connections are the common case at scale, so everything a connection
  // may never use is made on first use (see the getters below).
  private _items: Map<unknown, unknown> | null = null
  private _clientResults: ClientResults | null = null
  private _streamsOut: Map<string, Cancellable> | null = null
  private _streamsIn: Map<string, ClientStreamReader> | null = null
  private _liveInvocations: Set<Cancellable> | null = null
  private _controller: AbortController | null = null
  private _lifecycleContext: InvocationContext | null = null
  private _methodRates: Map<MethodDescriptor, RateCounter> | null = null
  private _wake: (() => void) | null = null

  constructor (
    route: RouteContext, store: SessionStore, transport: Transport, request: FastifyRequest,
    connectionId: string, token: string, userId: string | undefined, statefulRequested = false
  ) {
    super(route, store, transport, request, connectionId, token, userId)
    this.statefulRequested = statefulRequested
    const options = route.options
    this.limit = new InvocationLimit(options.maximumParallelInvocationsPerClient)
    this.rateCounter = options.rateLimit === null ? null : new RateCounter(options.rateLimit)
    this.rateLimited = this.rateCounter !== null || route.runtime.hasMethodRateLimits
    transport.attach(this)
  }

  get items (): Map<unknown, unknown> {
    return this._items ??= new Map()
  }

  get clientResults (): ClientResults {
    return this._clientResults ??= new ClientResults()
  }

  get streamsOut (): Map<string, Cancellable> {
    return this._streamsOut ??= new Map()
  }

  get streamsIn (): Map<string, ClientStreamReader> {
    return this._streamsIn ??= new Map()
  }

  get liveInvocations (): Set<Cancellable> {
    return this._liveInvocations ??= new Set()
  }

  get controller (): AbortController {
    if (this._controller === null) {
      this._controller = new AbortController()
      if (this.isClosed) this._controller.abort()
    }
    return this._controller
  }

  get lifecycleContext (): InvocationContext {
    return this._lifecycleContext ??= new InvocationContext(this, undefined, false)
  }

  protected get hubContext (): InvocationContext {
    return this.lifecycleContext
  }

  /** Made once, when an upload stream first needs it: readers wake the connection without a closure per message. */
  get wake (): () => void {
    return this._wake ??= () => { this.unblock() }
  }

  methodRateCounter (method: MethodDescriptor): RateCounter {
    const counters = this._methodRates ??= new Map()
    let counter = counters.get(method)
    if (counter === undefined) counters.set(method, counter = new RateCounter(method.rateLimit!))
    return counter
  }

  protected dispatch (message: HubMessage): boolean {
    return dispatchMessage(this, message)
  }

  // ------------------------------------------------------------ outbound

  sendSerialized (message: SerializedMessage): void {
    if (this.state !== CONNECTED) return
    this.route.runtime.stats.sent++
    this.writeSerialized(message)
  }

  sendMessage (message: HubMessage): void {
    if (this.state !== CONNECTED) return
    this.route.runtime.stats.onSent(message)
    const protocol = this.protocol!
    // Completions and other one-receiver messages: a text record goes from string to frame directly.
    if (!this.tracksWrites && protocol.encodeText !== undefined && this.transport.sendText !== undefined) {
      this.writeText(protocol.encodeText(message))
    } else {
      this.write(protocol.encode(message), this.tracksWrites && isTrackable(message))
    }
  }

  /** A one-receiver record the protocol has already framed (a Completion written straight to bytes). */
  sendEncoded (bytes: Buffer): void {
    if (this.state !== CONNECTED) return
    this.route.runtime.stats.sent++
    this.write(bytes, this.tracksWrites)
  }

  drained (): Promise<void> | null {
    return this.shouldWait && this.isConnected ? this.waitForDrain() : null
  }

  /** A client result: sends an Invocation with a server id and awaits the client's Completion. */
  invokeClient (method: string, args: unknown[]): Promise<unknown> {
    if (!this.isConnected) {
      return Promise.reject(new codes.SIGNALR_ERR_CONNECTION_DISCONNECTED(this.connectionId))
    }
    return new Promise((resolve, reject) => {
      // The clock, not the heartbeat's cached time: that lags by up to a tick and would end the wait early.
      const id = this.clientResults.add(method, this.clock() + this.options.clientResultTimeout, resolve, reject)
      try {
        this.sendMessage({ type: MessageType.Invocation, invocationId: id, target: method, arguments: args })
      } catch (err) {
        // Arguments that cannot be serialized: nothing was sent, so nothing is awaited.
        this.clientResults.fail(id, err as Error)
      }
    })
  }

  // ------------------------------------------------------------ heartbeat and ending

  protected tickInvocations (now: number): void {
    this._clientResults?.expire(now, this.options.clientResultTimeout)
  }

  protected endInvocations (closed: Error): void {
    this._controller?.abort()
    if (this._liveInvocations !== null) {
      for (const context of this._liveInvocations) context.abortSignal()
      this._liveInvocations.clear()
    }
    if (this._streamsOut !== null) {
      for (const context of this._streamsOut.values()) context.abortSignal()
    }
    if (this._streamsIn !== null) {
      for (const reader of this._streamsIn.values()) reader.fail(closed)
      this._streamsIn.clear()
    }
    this._clientResults?.rejectAll(closed)
  }
}
