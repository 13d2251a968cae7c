import { codes, errorText, HubError, withDetail } from '../errors.js'
import type { Hub } from '../hub/types.js'
import type { LifetimeConnection } from '../lifetime/lifetime-manager.js'
import { SerializedMessage } from '../lifetime/serialized-message.js'
import {
  HANDSHAKE_CANCELED, HANDSHAKE_OK, HandshakeReader, handshakeError, negotiateHandshake
} from '../protocol/handshake.js'
import type { HubProtocol, MessageReader } from '../protocol/hub-protocol.js'
import { MessageType, PING, type CloseMessage, type HubMessage } from '../protocol/messages.js'
import { ProtocolError } from '../protocol/protocol-error.js'
import type { ConnectionStatus, ConnectionTelemetry } from '../telemetry.js'
import { transportEntry } from '../transports/registry.js'
import type { Transport } from '../transports/transport.js'
import { isTrackable, ReconnectBuffer } from './reconnect-buffer.js'
import { CLOSED, CONNECTED, HANDSHAKING, HttpSession } from './session.js'

const PING_MESSAGE = new SerializedMessage(PING)
const CLOSE_PLAIN: CloseMessage = Object.freeze({ type: MessageType.Close })
const CLOSE_RECONNECT: CloseMessage = Object.freeze({ type: MessageType.Close, allowReconnect: true })
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
 * The hub layer of a connection (ASP.NET's HubConnectionHandler with its
 * HubConnectionContext): the handshake and its timeout, the inbound message
 * queue, onConnected and onDisconnected, the acks and sequence numbers of
 * stateful reconnect, the one slow-client check on every write, and the way
 * a connection ends. Reading order is the connection's order: a message that
 * cannot be taken yet stops the reading until it can, which is how ASP.NET
 * applies backpressure. What it needs of the invocation layer above it is
 * declared abstract here.
 */
export abstract class HubHandler extends HttpSession implements LifetimeConnection {
  protocol: HubProtocol | null = null
  /** The connection's span and start time, when OpenTelemetry is on. */
  telemetry: ConnectionTelemetry | null = null
  /** True while `onConnected` runs: client results to the caller are refused then (as in ASP.NET). */
  inOnConnected = false
  private reader: MessageReader | null = null
  private handshake: HandshakeReader | null = null
  private readonly inbox: Array<HubMessage | undefined> = []
  private inboxHead = 0
  private draining = false
  /** See `bufferedInboundBytes`. */
  private inboxBytes = 0
  /** Set once stateful reconnect is on for this connection. */
  private stateful: ReconnectBuffer | null = null
  private lastAckAt = 0
  private _ended: Promise<void> | null = null
  private endedDone = false
  private resolveEnded: (() => void) | null = null

  // ------------------------------------------------------------ what the invocation layer provides

  abstract readonly groupNames: Set<string>
  abstract sendSerialized (message: SerializedMessage): void
  abstract drained (): Promise<void> | null
  abstract invokeClient (method: string, args: unknown[]): Promise<unknown>
  /** The `hub` object of the lifecycle hooks. */
  protected abstract get hubContext (): Hub<any>
  /** Takes one message; false when it cannot be taken yet (reading pauses until `unblock`). */
  protected abstract dispatch (message: HubMessage): boolean
  /** Client-result deadlines. */
  protected abstract tickInvocations (now: number): void
  /** The connection ended: abort signals, fail upload streams and pending client results with `closed`. */
  protected abstract endInvocations (closed: Error): void
  /** The client asked for stateful reconnect in negotiate (it takes effect with handshake version 2). */
  protected abstract readonly statefulRequested: boolean

  /** Resolves once `onDisconnected` has run (or right away for a connection that never connected). */
  get ended (): Promise<void> {
    if (this._ended === null) {
      this._ended = this.endedDone ? Promise.resolve() : new Promise((resolve) => { this.resolveEnded = resolve })
    }
    return this._ended
  }

  private markEnded (): void {
    this.endedDone = true
    const resolve = this.resolveEnded
    this.resolveEnded = null
    resolve?.()
  }

  // ------------------------------------------------------------ inbound

  protected receive (data: Buffer): void {
    if (this.state === CONNECTED) {
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
    } else if (this.state === HANDSHAKING) {
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
      while (!this.paused && this.inboxHead < inbox.length && this.state === CONNECTED) {
        const message = inbox[this.inboxHead]!
        if (!this.dispatch(message)) {
          this.pauseReading()
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

  /** A slot or stream buffer freed up (or onConnected finished): resume reading. */
  unblock (): void {
    if (this.resumeReading()) this.drainInbox()
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
    // Stateful reconnect needs both sides (negotiated, handshake version 2) and a transport that can be replaced.
    if (this.statefulRequested && result.version >= 2 && transportEntry(this.transport.kind).canReattach) {
      this.stateful = new ReconnectBuffer(this.options.statefulReconnectBufferSize)
    }
    this.reader = protocol.createReader(this.options.maximumReceiveMessageSize)
    this.transport.setBinary(protocol.transferFormat === 'Binary')
    const transport = this.transport
    if (transport.sendNow !== undefined) transport.sendNow(HANDSHAKE_OK)
    else transport.send(HANDSHAKE_OK)
    this.state = CONNECTED
    if (this.debugEnabled) this.log.debug({ protocol: protocol.name, transport: this.transport.kind }, 'hub connection established')
    // Nothing is dispatched before onConnected has finished. When nothing of it
    // has to wait (in-memory lifetime manager, no onConnected hooks), it is
    // over here and the messages that came with the handshake go at once.
    let waiting: Promise<void> | null
    try {
      waiting = this.connectNow()
    } catch (err) {
      void this.refuse(err)
      return
    }
    // Otherwise the transport is paused meanwhile: a slow onConnected must not let the inbox grow.
    if (waiting !== null) this.pauseReading()
    if (scan.rest.length > 0) {
      try {
        this.reader.read(scan.rest, this.inbox as HubMessage[])
      } catch (err) {
        this.closeWithError(err)
        return
      }
      this.inboxBytes = scan.rest.length
    }
    if (waiting === null) this.drainInbox()
    else void this.startHub(waiting)
  }

  private failHandshake (error: string): void {
    this.log.debug({ error }, 'handshake failed')
    this.transport.send(handshakeError(error))
    this.finish({ error: undefined, close: null })
  }

  /**
   * Registers the connection with the lifetime manager and starts its
   * telemetry; null when onConnected is then complete, else the manager's
   * pending registration (startHub finishes it). Throws what the manager throws.
   */
  private connectNow (): Promise<void> | null {
    const runtime = this.runtime
    const registered = runtime.lifetime.onConnected(this)
    if (registered !== undefined || runtime.hooks.hasOnConnect || runtime.definition.onConnected !== undefined) {
      return registered ?? Promise.resolve()
    }
    this.openTelemetry()
    return null
  }

  private openTelemetry (): void {
    const telemetry = this.runtime.telemetry
    if (telemetry !== null) this.telemetry = telemetry.connectionOpened(this.runtime.name, this.connectionId, this.transport.kind)
  }

  /** The rest of onConnected (after `registered`, the lifetime manager's), with reading paused meanwhile. */
  private async startHub (registered: Promise<void>): Promise<void> {
    const runtime = this.runtime
    try {
      await registered
      this.openTelemetry()
      // The lifecycle hub object lives as long as the connection: made only when a hook needs it.
      if (runtime.hooks.hasOnConnect) await runtime.hooks.onConnect(this.hubContext)
      const onConnected = runtime.definition.onConnected
      if (onConnected !== undefined) {
        this.inOnConnected = true
        try {
          await onConnected(this.hubContext)
        } finally {
          this.inOnConnected = false
        }
      }
    } catch (err) {
      await this.refuse(err)
      return
    }
    this.unblock()
  }

  /** onConnected failed: the connection is refused. */
  private async refuse (err: unknown): Promise<void> {
    this.log.error({ err }, 'onConnected failed; refusing the connection')
    // ASP.NET: no reconnect hint, and OnDisconnected does not run for a connection that never opened.
    await this.runtime.lifetime.onDisconnected(this)
    this.finish({
      error: undefined,
      close: { type: MessageType.Close, error: withDetail(errorText.connectionClosedWithError, err, this.options.enableDetailedErrors) }
    }, false)
  }

  /** The client sent Close: a clean end unless it carries an error. */
  onClientClose (error: string | undefined): void {
    this.finish({ error: error !== undefined ? new HubError(error) : undefined, close: null })
  }

  protected transportEnded (error: Error | undefined): void {
    this.finish({ error, close: null })
  }

  // ------------------------------------------------------------ stateful reconnect

  get canReattach (): boolean {
    return this.stateful !== null && this.state === CONNECTED
  }

  /**
   * A stateful-reconnect client is back on a new transport: announce where our
   * replay starts (Sequence), then resend everything it has not acknowledged.
   * No new handshake and no second onConnected.
   */
  protected resumeOn (transport: Transport): void {
    const protocol = this.protocol!
    const stateful = this.stateful!
    transport.setBinary(protocol.transferFormat === 'Binary')
    // Half a record from the old transport can never be completed.
    this.reader = protocol.createReader(this.options.maximumReceiveMessageSize)
    transport.send(protocol.encode({ type: MessageType.Sequence, sequenceId: stateful.replayStart }))
    for (const bytes of stateful.unacked()) transport.send(bytes)
  }

  // ------------------------------------------------------------ outbound

  /** Bytes written but not yet delivered: the transport's queue plus, with stateful reconnect, the unacknowledged. */
  get pendingBytes (): number {
    return this.transport.bufferedAmount + (this.stateful !== null ? this.stateful.unackedBytes : 0)
  }

  /** A producer should wait: the client is behind, or the reconnect buffer is full. */
  get shouldWait (): boolean {
    return this.transport.bufferedAmount > this.options.applicationMaxBufferSize || (this.stateful !== null && this.stateful.isFull)
  }

  /** True when writes are tracked for replay (stateful reconnect). */
  protected get tracksWrites (): boolean {
    return this.stateful !== null
  }

  /**
   * The one slow-client check, made before every write: false (after ending the
   * connection) when the client is already `maximumSendBufferSize` behind.
   * Buffering more would let one slow reader grow memory without bound; a
   * Close message could not get through either, so the transport is simply
   * ended and the client may reconnect.
   */
  protected admitWrite (): boolean {
    const limit = this.route.options.maximumSendBufferSize
    if (this.pendingBytes <= limit) return true
    this.runtime.stats.slowClientCloses++
    this.log.warn({ buffered: this.pendingBytes, limit }, 'closing a client that does not read its messages fast enough')
    // The Close goes out behind what is queued; the transport's close timeout bounds the wait.
    this.closeWithError(new Error(`The client did not read its messages fast enough (more than ${limit} bytes waiting).`))
    return false
  }

  /** Writes one record, kept for replay when `trackable` and stateful reconnect is on. */
  protected write (bytes: Buffer, trackable: boolean): void {
    if (!this.admitWrite()) return
    if (trackable && this.stateful !== null) this.stateful.track(bytes)
    this.transport.send(bytes)
    this.lastSentAt = this.store.now
  }

  /**
   * Writes a message serialized once for many receivers: through the
   * transport's cached framing when it has one (WebSockets write one pre-built frame).
   */
  protected writeSerialized (message: SerializedMessage): void {
    const transport = this.transport
    if (transport.sendShared === undefined) {
      this.write(message.encode(this.protocol!), message.trackable)
      return
    }
    if (!this.admitWrite()) return
    const protocol = this.protocol!
    if (this.stateful !== null && message.trackable) this.stateful.track(message.encode(protocol))
    transport.sendShared(message, protocol)
    this.lastSentAt = this.store.now
  }

  /** Writes a text record given as a string (never tracked: only without stateful reconnect). */
  protected writeText (text: string): void {
    if (!this.admitWrite()) return
    this.transport.sendText!(text)
    this.lastSentAt = this.store.now
  }

  /** A keep-alive ping: written like any message, but not counted as one sent. */
  protected sendPing (): void {
    if (this.state === CONNECTED) this.writeSerialized(PING_MESSAGE)
  }

  // ------------------------------------------------------------ heartbeat

  protected tickHub (now: number): void {
    if (this.state === HANDSHAKING) {
      if (now - this.createdAt >= this.options.handshakeTimeout) this.failHandshake(HANDSHAKE_CANCELED)
      return
    }
    if (this.stateful !== null) this.tickAcks(now)
    this.tickInvocations(now)
  }

  /** Stateful reconnect: acknowledges what the client sent, at most once a second. */
  private tickAcks (now: number): void {
    if (now - this.lastAckAt < ACK_INTERVAL) return
    this.lastAckAt = now
    const sequenceId = this.stateful!.takeAck()
    if (sequenceId !== 0) this.transport.send(this.protocol!.encode({ type: MessageType.Ack, sequenceId }))
  }

  protected timedOut (): void {
    this.closeWithError(new Error("Client hasn't sent a message/ping within the configured ClientTimeoutInterval."), 'timeout')
  }

  // ------------------------------------------------------------ ending

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
    if (this.state === CLOSED) return
    const wasConnected = this.state === CONNECTED
    if (wasConnected && ending.close !== null) {
      // Bypass the slow-client check: this is the last write.
      this.transport.send(this.protocol!.encode(ending.close))
    }
    this.closeTransport()
    this.inbox.length = 0
    this.inboxHead = 0
    this.endInvocations(new codes.SIGNALR_ERR_CONNECTION_DISCONNECTED(this.connectionId))
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
    const runtime = this.runtime
    const onDisconnected = runtime.definition.onDisconnected
    try {
      if (onDisconnected !== undefined) await onDisconnected(this.hubContext, error)
    } catch (err) {
      this.log.error({ err }, 'onDisconnected failed')
    }
    try {
      if (runtime.hooks.hasOnDisconnect) await runtime.hooks.onDisconnect(this.hubContext, error)
    } catch (err) {
      this.log.error({ err }, 'onDisconnect hook failed')
    }
    try {
      await runtime.lifetime.onDisconnected(this)
    } catch (err) {
      this.log.error({ err }, 'removing the connection from the lifetime manager failed')
    }
    if (this.debugEnabled) this.log.debug({ err: error }, 'hub connection closed')
    this.markEnded()
  }
}
