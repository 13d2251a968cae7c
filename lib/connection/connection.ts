import type { FastifyBaseLogger, FastifyRequest } from 'fastify'
import { drainWaitChannel } from '../diagnostics.js'
import { errorText, HubError, withDetail } from '../errors.js'
import type { RouteContext } from '../http/route-context.js'
import type { HubRuntime } from '../hub/hub-runtime.js'
import { InvocationContext } from '../hub/caller-context.js'
import type { LifetimeConnection } from '../lifetime/lifetime-manager.js'
import { SerializedMessage } from '../lifetime/serialized-message.js'
import type { ResolvedHubOptions } from '../options.js'
import {
  HANDSHAKE_CANCELED, HANDSHAKE_OK, HandshakeReader, handshakeError, negotiateHandshake
} from '../protocol/handshake.js'
import type { HubProtocol, MessageReader } from '../protocol/hub-protocol.js'
import { MessageType, PING, type CloseMessage, type HubMessage } from '../protocol/messages.js'
import { ProtocolError } from '../protocol/protocol-error.js'
import type { Transport, TransportOwner } from '../transports/transport.js'
import { DETACHED } from '../transports/detached.js'
import { ClientResults } from '../dispatcher/client-results.js'
import { dispatchMessage } from '../dispatcher/dispatcher.js'
import { InvocationLimit } from '../dispatcher/invocation-limit.js'
import { RateCounter } from '../dispatcher/rate-limit.js'
import type { MethodDescriptor } from '../hub/method-table.js'
import type { ClientStreamReader } from '../dispatcher/streams.js'
import type { ConnectionStore } from './connection-store.js'
import type { ConnectionStatus, ConnectionTelemetry } from '../telemetry.js'
import { isTrackable, ReconnectBuffer } from './reconnect-buffer.js'

const enum State { Handshaking, Connected, Closed }

const PING_MESSAGE = new SerializedMessage(PING)
const CLOSE_PLAIN: CloseMessage = Object.freeze({ type: MessageType.Close })
const CLOSE_RECONNECT: CloseMessage = Object.freeze({ type: MessageType.Close, allowReconnect: true })
/** Owns a transport that a stateful reconnect replaced: whatever it still reports is ignored. */
const ORPHANED: TransportOwner = Object.freeze({
  onTransportData () {},
  onTransportClose () {},
  onTransportDrain () {},
  bufferedInboundBytes: 0
})
/** Both ASP.NET and the client acknowledge at most about once a second. */
const ACK_INTERVAL = 1000

/** Why a connection ends, and what the client is told. */
interface Ending {
  /** Passed to `onDisconnected`; undefined for a clean close. */
  readonly error: Error | undefined
  /** Sent before the transport closes; null sends nothing. */
  readonly close: CloseMessage | null
  /** For telemetry; a normal closure unless said otherwise. */
  readonly status?: ConnectionStatus
}

/**
 * One client's hub connection: handshake, the inbound message queue, outbound
 * writes and the way it ends. Reading order is the connection's order: a
 * message that cannot be taken yet (no invocation slot, a full upload stream)
 * stops the reading until it can, which is how ASP.NET applies backpressure.
 */
export class HubConnection implements TransportOwner, LifetimeConnection {
  readonly connectionId: string
  readonly token: string
  readonly route: RouteContext
  readonly runtime: HubRuntime
  readonly options: ResolvedHubOptions
  readonly store: ConnectionStore
  /** Replaced when a stateful-reconnect client comes back on a new WebSocket. */
  transport: Transport
  readonly request: FastifyRequest
  readonly userId: string | undefined
  readonly groupNames = new Set<string>()
  readonly limit: InvocationLimit
  // Idle connections are the common case at scale, so everything a connection
  // may never use is made on first use (see the getters below).
  private _log: FastifyBaseLogger | null = null
  private _items: Map<unknown, unknown> | null = null
  private _clientResults: ClientResults | null = null
  private _streamsOut: Map<string, InvocationContext> | null = null
  private _streamsIn: Map<string, ClientStreamReader> | null = null
  private _liveInvocations: Set<InvocationContext> | null = null
  private _controller: AbortController | null = null
  private _lifecycleContext: InvocationContext | null = null
  private _ended: Promise<void> | null = null
  /** The connection's span and start time, when OpenTelemetry is on. */
  telemetry: ConnectionTelemetry | null = null
  /** The connection-wide call limit (the `rateLimit` option), if any. */
  readonly rateCounter: RateCounter | null
  private _methodRates: Map<MethodDescriptor, RateCounter> | null = null
  private endedDone = false
  protocol: HubProtocol | null = null
  createdAt: number
  closedAt = 0
  lastReceivedAt: number
  lastSentAt: number
  /** True while `onConnected` runs: client results to the caller are refused then (as in ASP.NET). */
  inOnConnected = false
  private state = State.Handshaking
  private reader: MessageReader | null = null
  private handshake: HandshakeReader | null = null
  private readonly inbox: Array<HubMessage | undefined> = []
  private inboxHead = 0
  private blocked = false
  private draining = false
  /** See `bufferedInboundBytes`. */
  private inboxBytes = 0
  private drainWaiters: Array<() => void> | null = null
  private resolveEnded: (() => void) | null = null
  /** The client asked for stateful reconnect in negotiate (it takes effect with handshake version 2). */
  private readonly statefulRequested: boolean
  /** Set once stateful reconnect is on for this connection. */
  private stateful: ReconnectBuffer | null = null
  /** When the transport dropped and the connection began waiting for the client to come back (0: attached). */
  private detachedAt = 0
  private detachError: Error | undefined
  private lastAckAt = 0
  /** Created once so readers and slots can wake the connection without a closure per message. */
  readonly wake: () => void

  constructor (
    route: RouteContext, store: ConnectionStore, transport: Transport, request: FastifyRequest,
    connectionId: string, token: string, userId: string | undefined, statefulRequested = false
  ) {
    this.statefulRequested = statefulRequested
    this.connectionId = connectionId
    this.token = token
    this.route = route
    this.runtime = route.runtime
    this.options = route.options
    this.store = store
    this.transport = transport
    this.request = request
    this.userId = userId
    this.limit = new InvocationLimit(route.options.maximumParallelInvocationsPerClient)
    this.rateCounter = route.options.rateLimit === null ? null : new RateCounter(route.options.rateLimit)
    this.rateLimited = this.rateCounter !== null || route.runtime.hasMethodRateLimits
    this.createdAt = store.now
    this.lastReceivedAt = store.now
    this.lastSentAt = store.now
    this.wake = () => { this.unblock() }
    transport.attach(this)
  }

  /** A child of the mapping scope's logger, bound to the hub and connection id. */
  get log (): FastifyBaseLogger {
    return this._log ??= this.route.log.child({ hub: this.runtime.name, connectionId: this.connectionId })
  }

  get items (): Map<unknown, unknown> {
    return this._items ??= new Map()
  }

  get clientResults (): ClientResults {
    return this._clientResults ??= new ClientResults()
  }

  /** Server-to-client streams in progress, by invocation id (for CancelInvocation). */
  get streamsOut (): Map<string, InvocationContext> {
    return this._streamsOut ??= new Map()
  }

  /** Client-to-server streams, by stream id. */
  get streamsIn (): Map<string, ClientStreamReader> {
    return this._streamsIn ??= new Map()
  }

  /** Invocations whose `hub.signal` was read, so they can be aborted when the connection ends. */
  get liveInvocations (): Set<InvocationContext> {
    return this._liveInvocations ??= new Set()
  }

  /** Aborted when the connection ends; the signal of `onConnected`/`onDisconnected`. */
  get controller (): AbortController {
    if (this._controller === null) {
      this._controller = new AbortController()
      if (this.state === State.Closed) this._controller.abort()
    }
    return this._controller
  }

  /** The `hub` object of the lifecycle hooks. */
  get lifecycleContext (): InvocationContext {
    return this._lifecycleContext ??= new InvocationContext(this, undefined, false)
  }

  /** Resolves once `onDisconnected` has run (or right away for a connection that never connected). */
  get ended (): Promise<void> {
    if (this._ended === null) {
      this._ended = this.endedDone ? Promise.resolve() : new Promise((resolve) => { this.resolveEnded = resolve })
    }
    return this._ended
  }

  /** Checked before routine debug lines, so quiet apps never build a child logger per connection. */
  private get debugEnabled (): boolean {
    const log = this.route.log as FastifyBaseLogger & { isLevelEnabled?: (level: string) => boolean }
    return log.isLevelEnabled?.('debug') ?? true
  }

  private markEnded (): void {
    this.endedDone = true
    const resolve = this.resolveEnded
    this.resolveEnded = null
    resolve?.()
  }

  /** True when any call limit applies, so the dispatcher can skip the check otherwise. */
  readonly rateLimited: boolean

  methodRateCounter (method: MethodDescriptor): RateCounter {
    const counters = this._methodRates ??= new Map()
    let counter = counters.get(method)
    if (counter === undefined) counters.set(method, counter = new RateCounter(method.rateLimit!))
    return counter
  }

  get isConnected (): boolean {
    return this.state === State.Connected
  }

  get isClosed (): boolean {
    return this.state === State.Closed
  }

  // ---------------------------------------------------------------- inbound

  onTransportData (data: Buffer): void {
    this.lastReceivedAt = this.store.now
    if (this.state === State.Connected) {
      const inbox = this.inbox as HubMessage[]
      if (this.inboxHead >= inbox.length) this.inboxBytes = 0
      const before = inbox.length
      try {
        this.reader!.read(data, inbox)
        if (this.stateful !== null) this.sequenceIncoming(inbox, before)
      } catch (err) {
        this.closeWithError(err)
        return
      }
      this.drainInbox()
      if (this.inboxHead < inbox.length) this.inboxBytes += data.length
    } else if (this.state === State.Handshaking) {
      this.readHandshake(data)
    }
  }

  /**
   * Stateful reconnect: takes Ack and Sequence out of the newly read messages
   * and drops client messages replayed after a reconnect that were already taken.
   */
  private sequenceIncoming (inbox: HubMessage[], from: number): void {
    const stateful = this.stateful!
    let write = from
    for (let read = from; read < inbox.length; read++) {
      const message = inbox[read]!
      if (message.type === MessageType.Ack) {
        if (stateful.ack(message.sequenceId)) this.onTransportDrain()
        continue
      }
      if (message.type === MessageType.Sequence) {
        if (!stateful.resetIncoming(message.sequenceId)) {
          throw new ProtocolError("Sequence ID greater than amount of messages we've received.")
        }
        continue
      }
      if (isTrackable(message) && !stateful.acceptIncoming()) continue
      inbox[write++] = message
    }
    inbox.length = write
  }

  private drainInbox (): void {
    if (this.draining) return
    this.draining = true
    const inbox = this.inbox
    try {
      while (!this.blocked && this.inboxHead < inbox.length && this.state === State.Connected) {
        const message = inbox[this.inboxHead]!
        if (!dispatchMessage(this, message)) {
          this.block()
          break
        }
        this.runtime.stats.onReceived(message)
        inbox[this.inboxHead++] = undefined
      }
    } catch (err) {
      // The dispatcher answers every failure it knows of itself; anything else is a bug
      // that must cost this connection, never the process or a stuck inbox.
      this.log.error({ err }, 'dispatching a message failed')
      this.closeWithError(err)
    } finally {
      this.draining = false
    }
    if (this.inboxHead >= inbox.length) {
      inbox.length = 0
      this.inboxHead = 0
    }
  }

  private block (): void {
    if (this.blocked) return
    this.blocked = true
    this.transport.pause()
  }

  /** A slot or stream buffer freed up: resume reading. */
  unblock (): void {
    if (!this.blocked || this.state !== State.Connected) return
    this.blocked = false
    this.transport.resume()
    this.drainInbox()
  }

  get isBlocked (): boolean {
    return this.blocked
  }

  /**
   * Bytes of received data whose messages still wait in the inbox (an upper
   * bound: a chunk counts whole until the inbox empties). What pausing the
   * transport keeps bounded while the connection cannot take messages.
   */
  get bufferedInboundBytes (): number {
    return this.inboxHead < this.inbox.length ? this.inboxBytes : 0
  }

  private readHandshake (data: Buffer): void {
    this.handshake ??= new HandshakeReader(this.options.maximumReceiveMessageSize)
    let scan
    try {
      scan = this.handshake.read(data)
    } catch (err) {
      this.failHandshake(err instanceof ProtocolError ? err.message : HANDSHAKE_CANCELED)
      return
    }
    if (!scan.done) return
    this.handshake = null
    const result = negotiateHandshake(scan.request, this.route.protocols, this.transport.transferFormats)
    if (!result.ok) {
      const detail = this.options.enableDetailedErrors && result.detail !== undefined ? ` ${result.detail}` : ''
      this.failHandshake(result.error + detail)
      return
    }
    const protocol = result.protocol
    this.protocol = protocol
    // Stateful reconnect needs both sides: negotiated, and handshake version 2 (WebSockets only).
    if (this.statefulRequested && result.version >= 2 && this.transport.kind === 'WebSockets') {
      this.stateful = new ReconnectBuffer(this.options.statefulReconnectBufferSize)
    }
    this.reader = protocol.createReader(this.options.maximumReceiveMessageSize)
    this.transport.setBinary(protocol.transferFormat === 'Binary')
    this.transport.send(HANDSHAKE_OK)
    this.state = State.Connected
    // Nothing is dispatched before onConnected has finished, and nothing more
    // is read meanwhile: a slow onConnected must not let the inbox grow.
    this.block()
    if (scan.rest.length > 0) {
      try {
        this.reader.read(scan.rest, this.inbox as HubMessage[])
      } catch (err) {
        this.closeWithError(err)
        return
      }
      this.inboxBytes = scan.rest.length
    }
    if (this.debugEnabled) this.log.debug({ protocol: protocol.name, transport: this.transport.kind }, 'hub connection established')
    void this.startHub()
  }

  private failHandshake (error: string): void {
    this.log.debug({ error }, 'handshake failed')
    this.transport.send(handshakeError(error))
    this.finish({ error: undefined, close: null })
  }

  private async startHub (): Promise<void> {
    const lifetime = this.runtime.lifetime
    try {
      await lifetime.onConnected(this)
      const telemetry = this.runtime.telemetry
      if (telemetry !== null) this.telemetry = telemetry.connectionOpened(this.runtime.name, this.connectionId, this.transport.kind)
      await this.runtime.hooks.onConnect(this.lifecycleContext)
      const onConnected = this.runtime.definition.onConnected
      if (onConnected !== undefined) {
        this.inOnConnected = true
        try {
          await onConnected(this.lifecycleContext)
        } finally {
          this.inOnConnected = false
        }
      }
    } catch (err) {
      this.log.error({ err }, 'onConnected failed; refusing the connection')
      // ASP.NET: no reconnect hint, and OnDisconnected does not run for a connection that never opened.
      await lifetime.onDisconnected(this)
      this.finish({
        error: undefined,
        close: { type: MessageType.Close, error: withDetail(errorText.connectionClosedWithError, err, this.options.enableDetailedErrors) }
      }, false)
      return
    }
    this.unblock()
  }

  /** The client sent Close: a clean end unless it carries an error. */
  onClientClose (error: string | undefined): void {
    this.finish({ error: error !== undefined ? new HubError(error) : undefined, close: null })
  }

  onTransportClose (error: Error | undefined): void {
    if (this.stateful !== null && this.state === State.Connected && this.detachedAt === 0) {
      // The client may come back on a new WebSocket with the same token within the disconnect timeout.
      this.transport = DETACHED
      this.detachedAt = this.store.now
      this.detachError = error ?? new Error('The WebSocket closed and the client did not reconnect in time.')
      this.log.debug('transport lost; waiting for a stateful reconnect')
      return
    }
    this.finish({ error, close: null })
  }

  /**
   * A stateful connection accepts its client back on a new WebSocket: after
   * its old one dropped, and also while the old one still looks open here.
   * The client may see its socket die before the server does (a half-open TCP
   * connection); the token proves ownership, so the new socket takes over.
   */
  get canReattach (): boolean {
    return this.stateful !== null && this.state === State.Connected
  }

  /**
   * A stateful-reconnect client is back on a new WebSocket: announce where our
   * replay starts (Sequence), then resend everything it has not acknowledged.
   * No new handshake and no second onConnected.
   */
  reattach (transport: Transport): void {
    const stateful = this.stateful!
    if (this.detachedAt === 0) {
      // The old socket is still open here: cut it loose first, so nothing it
      // still reads or its closing reaches this connection, then close it.
      // What we wrote to it and the client missed is unacknowledged: replayed below.
      const previous = this.transport
      previous.attach(ORPHANED)
      // Paused, it could not read the client's answer to the close frame.
      previous.resume()
      previous.close()
      this.log.debug('stateful reconnect replaces a WebSocket that is still open')
    }
    this.transport = transport
    this.detachedAt = 0
    this.detachError = undefined
    transport.attach(this)
    transport.setBinary(this.protocol!.transferFormat === 'Binary')
    // Half a record from the old socket can never be completed.
    this.reader = this.protocol!.createReader(this.options.maximumReceiveMessageSize)
    transport.send(this.protocol!.encode({ type: MessageType.Sequence, sequenceId: stateful.replayStart }))
    for (const bytes of stateful.unacked()) transport.send(bytes)
    if (this.blocked) transport.pause()
    this.lastReceivedAt = this.store.now
    this.lastSentAt = this.store.now
    this.log.debug('stateful reconnect')
    this.onTransportDrain()
  }

  onTransportDrain (): void {
    const waiters = this.drainWaiters
    if (waiters === null) return
    this.drainWaiters = null
    for (const resolve of waiters) resolve()
  }

  /** Resolves when the outgoing buffer is below the high-water mark (for stream producers). */
  waitForDrain (): Promise<void> {
    if (this.state === State.Closed) return Promise.resolve()
    if (drainWaitChannel.hasSubscribers) drainWaitChannel.publish({ connectionId: this.connectionId })
    return new Promise((resolve) => {
      if (this.drainWaiters === null) {
        this.drainWaiters = [resolve]
        this.transport.waitForDrain()
      } else {
        this.drainWaiters.push(resolve)
      }
    })
  }

  // ---------------------------------------------------------------- outbound

  sendSerialized (message: SerializedMessage): void {
    if (this.state !== State.Connected) return
    if (message !== PING_MESSAGE) this.runtime.stats.sent++
    const transport = this.transport
    if (transport.sendShared === undefined) {
      this.write(message.encode(this.protocol!), this.stateful !== null && message.trackable)
      return
    }
    if (this.pendingBytes > this.options.maximumSendBufferSize) {
      this.dropSlowClient()
      return
    }
    const protocol = this.protocol!
    const payload = message.encode(protocol)
    if (this.stateful !== null && message.trackable) this.stateful.track(payload)
    transport.sendShared(message, protocol, payload)
    this.lastSentAt = this.store.now
  }

  sendMessage (message: HubMessage): void {
    if (this.state !== State.Connected) return
    this.runtime.stats.onSent(message)
    const protocol = this.protocol!
    const transport = this.transport
    // Completions and other one-receiver messages: a text record goes from string to frame directly.
    if (this.stateful === null && protocol.encodeText !== undefined && transport.sendText !== undefined) {
      if (this.pendingBytes > this.options.maximumSendBufferSize) {
        this.dropSlowClient()
        return
      }
      transport.sendText(protocol.encodeText(message))
      this.lastSentAt = this.store.now
      return
    }
    this.write(protocol.encode(message), this.stateful !== null && isTrackable(message))
  }

  /** Bytes written but not yet delivered: the socket's queue plus, with stateful reconnect, the unacknowledged. */
  get pendingBytes (): number {
    return this.transport.bufferedAmount + (this.stateful !== null ? this.stateful.unackedBytes : 0)
  }

  /** A producer should wait: the client is behind, or the reconnect buffer is full. */
  get shouldWait (): boolean {
    return this.transport.bufferedAmount > this.options.applicationMaxBufferSize || (this.stateful !== null && this.stateful.isFull)
  }

  drained (): Promise<void> | null {
    return this.shouldWait && this.state === State.Connected ? this.waitForDrain() : null
  }

  private write (bytes: Buffer, trackable: boolean): void {
    if (this.pendingBytes > this.options.maximumSendBufferSize) {
      this.dropSlowClient()
      return
    }
    if (trackable) this.stateful!.track(bytes)
    this.transport.send(bytes)
    this.lastSentAt = this.store.now
  }

  /**
   * The client reads slower than we send and is already `maximumSendBufferSize`
   * behind. Buffering more would let one slow reader grow memory without
   * bound; a Close message could not get through either, so the transport is
   * simply ended and the client may reconnect.
   */
  private dropSlowClient (): void {
    this.runtime.stats.slowClientCloses++
    this.log.warn({ buffered: this.pendingBytes, limit: this.options.maximumSendBufferSize },
      'closing a client that does not read its messages fast enough')
    // The Close goes out behind what is queued; the transport's close timeout bounds the wait.
    this.closeWithError(new Error(
      `The client did not read its messages fast enough (more than ${this.options.maximumSendBufferSize} bytes waiting).`))
  }

  /** A client result: sends an Invocation with a server id and awaits the client's Completion. */
  invokeClient (method: string, args: unknown[]): Promise<unknown> {
    if (this.state !== State.Connected) {
      return Promise.reject(new Error(`Connection '${this.connectionId}' disconnected.`))
    }
    return new Promise((resolve, reject) => {
      // The clock, not the heartbeat's cached time: that lags by up to a tick and would end the wait early.
      const id = this.clientResults.add(method, this.store.clock() + this.options.clientResultTimeout, resolve, reject)
      try {
        this.sendMessage({ type: MessageType.Invocation, invocationId: id, target: method, arguments: args })
      } catch (err) {
        // Arguments that cannot be serialized: nothing was sent, so nothing is awaited.
        this.clientResults.fail(id, err as Error)
      }
    })
  }

  // ---------------------------------------------------------------- heartbeat

  /** Called by the shared heartbeat: handshake timeout, keep-alive, client timeout, result deadlines. */
  tick (now: number): void {
    const options = this.options
    this.transport.tick?.(now, options.longPollTimeout, options.disconnectTimeout)
    if (this.state === State.Closed) {
      // A lingering transport has had its grace period: forget the token.
      if (now - this.closedAt >= options.disconnectTimeout) this.store.remove(this)
      return
    }
    if (this.state === State.Handshaking) {
      if (now - this.createdAt >= options.handshakeTimeout) this.failHandshake(HANDSHAKE_CANCELED)
      return
    }
    if (this.state !== State.Connected) return
    if (this.detachedAt !== 0) {
      if (now - this.detachedAt >= options.disconnectTimeout) this.finish({ error: this.detachError, close: null })
      return
    }
    if (this.stateful !== null && now - this.lastAckAt >= ACK_INTERVAL) {
      this.lastAckAt = now
      const sequenceId = this.stateful.takeAck()
      if (sequenceId !== 0) this.transport.send(this.protocol!.encode({ type: MessageType.Ack, sequenceId }))
    }
    if (this.transport.needsKeepAlive) {
      // While reading is paused the client's pings cannot arrive; ASP.NET pauses the timeout then too.
      if (!this.blocked && now - this.lastReceivedAt >= options.clientTimeoutInterval) {
        this.closeWithError(new Error("Client hasn't sent a message/ping within the configured ClientTimeoutInterval."), 'timeout')
        return
      }
      // Any message resets the client's server timeout, so only an idle connection needs a ping.
      if (now - this.lastSentAt >= options.keepAliveInterval) this.sendSerialized(PING_MESSAGE)
    }
    this._clientResults?.expire(now, options.clientResultTimeout)
  }

  // ---------------------------------------------------------------- ending

  /** A protocol error or timeout: Close with `allowReconnect`, as ASP.NET sends it. */
  closeWithError (err: unknown, status: ConnectionStatus = 'normal_closure'): void {
    const error = err instanceof Error ? err : new Error(String(err))
    if (!(err instanceof ProtocolError)) this.log.debug({ err: error }, 'closing connection with an error')
    else this.log.debug({ reason: error.message }, 'protocol error')
    this.finish({
      error,
      close: {
        type: MessageType.Close,
        error: withDetail(errorText.connectionClosedWithError, error, this.options.enableDetailedErrors),
        allowReconnect: true
      },
      status
    })
  }

  /** `hub.abort()`: a plain Close, and a clean `onDisconnected`. */
  abort (): void {
    this.finish({ error: undefined, close: CLOSE_PLAIN })
  }

  /** Server shutdown: tell the client it may reconnect (to another instance). */
  async shutdown (): Promise<void> {
    this.finish({ error: undefined, close: CLOSE_RECONNECT, status: 'app_shutdown' })
    // Wait for the client's side of the close too (bounded by the transport's close
    // timeout), so the Close message is not cut off when the server drops sockets.
    await Promise.all([this.ended, this.transport.whenClosed()])
  }

  private finish (ending: Ending, runOnDisconnected = true): void {
    if (this.state === State.Closed) return
    const wasConnected = this.state === State.Connected
    if (wasConnected && ending.close !== null) {
      // Bypass the slow-client check: this is the last write.
      this.transport.send(this.protocol!.encode(ending.close))
    }
    this.state = State.Closed
    this.closedAt = this.store.now
    // A paused socket could not read the client's side of the close handshake.
    if (this.blocked) this.transport.resume()
    this.transport.close()
    if (!this.transport.lingersAfterClose) this.store.remove(this)
    this.inbox.length = 0
    this.inboxHead = 0
    this.onTransportDrain()

    this._controller?.abort()
    if (this._liveInvocations !== null) {
      for (const context of this._liveInvocations) context.abortSignal()
      this._liveInvocations.clear()
    }
    if (this._streamsOut !== null) {
      for (const context of this._streamsOut.values()) context.abortSignal()
    }
    const closed = new Error(`Connection '${this.connectionId}' disconnected.`)
    if (this._streamsIn !== null) {
      for (const reader of this._streamsIn.values()) reader.fail(closed)
      this._streamsIn.clear()
    }
    this._clientResults?.rejectAll(closed)
    if (this.telemetry !== null) {
      this.runtime.telemetry!.connectionClosed(this.telemetry, ending.status ?? 'normal_closure', ending.error)
      this.telemetry = null
    }

    if (!wasConnected || !runOnDisconnected) {
      this.markEnded()
      return
    }
    void this.runOnDisconnected(ending.error)
  }

  private async runOnDisconnected (error: Error | undefined): Promise<void> {
    const onDisconnected = this.runtime.definition.onDisconnected
    try {
      if (onDisconnected !== undefined) await onDisconnected(this.lifecycleContext, error)
    } catch (err) {
      this.log.error({ err }, 'onDisconnected failed')
    }
    try {
      await this.runtime.hooks.onDisconnect(this.lifecycleContext, error)
    } catch (err) {
      this.log.error({ err }, 'onDisconnect hook failed')
    }
    try {
      await this.runtime.lifetime.onDisconnected(this)
    } catch (err) {
      this.log.error({ err }, 'removing the connection from the lifetime manager failed')
    }
    if (this.debugEnabled) this.log.debug({ err: error }, 'hub connection closed')
    this.markEnded()
  }
}
