import type { FastifyBaseLogger, FastifyRequest } from 'fastify'
import type { InvocationTarget } from '../dispatcher/invocation-target.js'
import { codes } from '../errors.js'
import { MessageType } from '../protocol/messages.js'
import { SerializedMessage } from '../lifetime/serialized-message.js'
import { HubCallerClientsImpl } from './clients.js'
import type { GroupManager, Hub, SingleClientProxy, TransportKind } from './types.js'

/**
 * The `hub` parameter of one invocation (or of the lifecycle hooks). Cheap to
 * make: the signal, the selectors and the caller proxy are created only when
 * a handler reads them, so an echo-style method allocates just this object.
 */
export class InvocationContext implements Hub<any> {
  readonly connection: InvocationTarget
  readonly invocationId: string | undefined
  /** Holds a `maximumParallelInvocationsPerClient` slot until it completes or awaits a client result. */
  holdsSlot: boolean
  /** Upload stream ids owned by this invocation, removed when it ends. */
  streamIds: readonly string[] | null = null
  cancelled = false
  private controller: AbortController | null = null
  private callerClients: HubCallerClientsImpl | null = null

  constructor (connection: InvocationTarget, invocationId: string | undefined, holdsSlot: boolean) {
    this.connection = connection
    this.invocationId = invocationId
    this.holdsSlot = holdsSlot
  }

  get connectionId (): string { return this.connection.connectionId }
  get userId (): string | undefined { return this.connection.userId }
  get request (): FastifyRequest { return this.connection.request }
  // Every transport is made by its registry entry and carries that entry's kind.
  get transport (): TransportKind { return this.connection.transport.kind as TransportKind }
  get items (): Map<unknown, unknown> { return this.connection.items }
  get log (): FastifyBaseLogger { return this.connection.log }
  get groups (): GroupManager { return this.connection.runtime.groups }

  get signal (): AbortSignal {
    const connection = this.connection
    if (this === connection.lifecycleContext) return connection.controller.signal
    if (this.controller === null) {
      this.controller = new AbortController()
      if (this.cancelled || connection.isClosed) this.controller.abort()
      else connection.liveInvocations.add(this)
    }
    return this.controller.signal
  }

  /** Cancellation (CancelInvocation) or the end of the connection. */
  abortSignal (): void {
    this.cancelled = true
    this.controller?.abort()
  }

  /** The invocation is over: stop tracking its signal. */
  release (): void {
    if (this.controller !== null) this.connection.liveInvocations.delete(this)
  }

  abort (): void {
    this.connection.abort()
  }

  get clients (): HubCallerClientsImpl {
    return this.callerClients ??= new HubCallerClientsImpl(this.connection.runtime.lifetime, this.connection.connectionId, new CallerProxy(this), this)
  }

  /**
   * The one guard every client result from a hub passes (`caller` and
   * `client(id)` alike). Inside `onConnected` it refuses: the connection reads
   * nothing until the hook returns, so no Completion could arrive (ASP.NET
   * refuses there too, HubCallerClients.InvokeAllowed). Otherwise a hub method
   * gives up its invocation slot first, so the connection can go on reading
   * and deliver the client's Completion even at
   * `maximumParallelInvocationsPerClient: 1` (as ASP.NET does).
   */
  beforeClientResult (): Error | null {
    const connection = this.connection
    if (connection.inOnConnected && this === connection.lifecycleContext) return new codes.SIGNALR_ERR_CLIENT_RESULT_IN_ON_CONNECTED()
    if (!this.holdsSlot) return null
    this.holdsSlot = false
    if (connection.limit.release()) connection.unblock()
    return null
  }
}

/** `hub.clients.caller`: writes straight to the calling connection. */
class CallerProxy implements SingleClientProxy<any> {
  private readonly context: InvocationContext

  constructor (context: InvocationContext) {
    this.context = context
  }

  send (method: string, ...args: unknown[]): Promise<void> {
    const connection = this.context.connection
    try {
      connection.sendSerialized(new SerializedMessage({ type: MessageType.Invocation, target: method, arguments: args }))
    } catch (err) {
      // Arguments that cannot be serialized fail this send only.
      return Promise.reject(err)
    }
    return connection.drained() ?? Promise.resolve()
  }

  invoke (method: string, ...args: unknown[]): Promise<any> {
    const refused = this.context.beforeClientResult()
    if (refused !== null) return Promise.reject(refused)
    return this.context.connection.invokeClient(method, args)
  }
}
