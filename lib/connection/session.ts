import type { FastifyBaseLogger, FastifyRequest } from 'fastify'
import type { Clock } from '../clock.js'
import type { RouteContext } from '../http/route-context.js'
import type { HubRuntime } from '../hub/hub-runtime.js'
import type { ResolvedHubOptions } from '../options.js'
import { DETACHED } from '../transports/detached.js'
import type { Transport, TransportOwner } from '../transports/transport.js'
import { drainWaitChannel } from '../diagnostics.js'

/** Where a connection is in its life; the session owns the value, the hub layer moves it on. */
export const HANDSHAKING = 0
export const CONNECTED = 1
export const CLOSED = 2
export type Phase = typeof HANDSHAKING | typeof CONNECTED | typeof CLOSED

/** What a session needs of the store that keeps and ticks it (lib/connection/connection-store.ts). */
export interface SessionStore {
  /** The heartbeat's time (cached per tick): what activity is stamped with. */
  readonly now: number
  /** The plugin's one clock, read when a cached time would be too old. */
  readonly clock: Clock
  /** Forgets the token. */
  remove (session: { readonly token: string }): void
}

/** Owns a transport that a stateful reconnect replaced: whatever it still reports is ignored. */
const ORPHANED: TransportOwner = Object.freeze({
  onTransportData () {},
  onTransportClose () {},
  onTransportDrain () {},
  bufferedInboundBytes: 0
})

/**
 * The HTTP-level session of one connection (ASP.NET's HttpConnectionContext):
 * its token, the transport it is on (attached, detached while a stateful
 * client may come back, reattached), reading paused or not, the linger of a
 * closed long-polling connection and the keep-alive schedule. It knows no hub
 * messages: what arrives goes to `receive`, and what it must ask of the hub
 * layer are the abstract members below.
 *
 * The layers of one connection are one object (HubConnection extends
 * HubHandler extends HttpSession): idle connections are the common case at
 * scale, and one object with lazily made parts costs less than three.
 */
export abstract class HttpSession implements TransportOwner {
  readonly connectionId: string
  readonly token: string
  readonly route: RouteContext
  readonly store: SessionStore
  readonly request: FastifyRequest
  readonly userId: string | undefined
  /** Replaced when a stateful-reconnect client comes back on a new WebSocket. */
  transport: Transport
  createdAt: number
  closedAt = 0
  /**
   * Stamped on every message, so they start as numbers: a field first
   * defined as `undefined` (a declared field the constructor fills) takes
   * any value, and each stamp, beyond the small-integer range, then becomes
   * a new heap number referenced from this long-lived object, one per
   * connection kept alive by every scavenge. A field that has only held
   * numbers is updated in place.
   */
  lastReceivedAt = 0
  lastSentAt = 0
  protected state: Phase = HANDSHAKING
  /** Reading is paused: the transport is told to stop delivering (backpressure on the client). */
  protected paused = false
  /** When the transport dropped and the session began waiting for the client to come back (0: attached). */
  private detachedAt = 0
  private detachError: Error | undefined
  private drainWaiters: Array<() => void> | null = null
  private _log: FastifyBaseLogger | null = null

  constructor (
    route: RouteContext, store: SessionStore, transport: Transport, request: FastifyRequest,
    connectionId: string, token: string, userId: string | undefined
  ) {
    this.connectionId = connectionId
    this.token = token
    this.route = route
    this.store = store
    this.transport = transport
    this.request = request
    this.userId = userId
    this.createdAt = store.now
    this.lastReceivedAt = store.now
    this.lastSentAt = store.now
  }

  // Read through the route rather than copied: two fewer fields on every connection.
  get runtime (): HubRuntime {
    return this.route.runtime
  }

  get options (): ResolvedHubOptions {
    return this.route.options
  }

  /** A child of the mapping scope's logger, bound to the hub and connection id. */
  get log (): FastifyBaseLogger {
    return this._log ??= this.route.log.child({ hub: this.route.runtime.name, connectionId: this.connectionId })
  }

  /** Checked before routine debug lines, so quiet apps never build a child logger per connection. */
  protected get debugEnabled (): boolean {
    const log = this.route.log as FastifyBaseLogger & { isLevelEnabled?: (level: string) => boolean }
    return log.isLevelEnabled?.('debug') ?? true
  }

  get isConnected (): boolean {
    return this.state === CONNECTED
  }

  get isClosed (): boolean {
    return this.state === CLOSED
  }

  /** The plugin's clock, for deadlines and rate windows that must not lag by a tick. */
  clock (): number {
    return this.store.clock()
  }

  // ------------------------------------------------------------ what the hub layer provides

  /** Bytes from the client, after the session stamped them. */
  protected abstract receive (data: Buffer): void
  /** The transport is gone for good (or the reattach wait ran out): end the connection. */
  protected abstract transportEnded (error: Error | undefined): void
  /** True when a dropped transport may be replaced under the same token (stateful reconnect). */
  abstract get canReattach (): boolean
  /** A new transport took over: tell the client where the replay starts and replay. */
  protected abstract resumeOn (transport: Transport): void
  /** The hub layer's timers (handshake timeout, acks, client-result deadlines). */
  protected abstract tickHub (now: number): void
  /** Sends a keep-alive ping. */
  protected abstract sendPing (): void
  abstract readonly bufferedInboundBytes: number

  // ------------------------------------------------------------ transport events

  onTransportData (data: Buffer): void {
    this.lastReceivedAt = this.store.now
    this.receive(data)
  }

  onTransportClose (error: Error | undefined): void {
    if (this.detachedAt === 0 && this.canReattach) {
      // The client may come back on a new transport with the same token within the disconnect timeout.
      this.transport = DETACHED
      this.detachedAt = this.store.now
      this.detachError = error ?? new Error('The WebSocket closed and the client did not reconnect in time.')
      this.log.debug('transport lost; waiting for a stateful reconnect')
      return
    }
    this.transportEnded(error)
  }

  onTransportDrain (): void {
    const waiters = this.drainWaiters
    if (waiters === null) return
    this.drainWaiters = null
    for (const resolve of waiters) resolve()
  }

  /** Resolves when the outgoing buffer is below the high-water mark (for stream producers). */
  waitForDrain (): Promise<void> {
    if (this.state === CLOSED) return Promise.resolve()
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

  /**
   * A stateful session accepts its client back on a new transport: after its
   * old one dropped, and also while the old one still looks open here. The
   * client may see its socket die before the server does (a half-open TCP
   * connection); the token proves ownership, so the new one takes over.
   */
  reattach (transport: Transport): void {
    if (this.detachedAt === 0) {
      // The old transport is still open here: cut it loose first, so nothing it
      // still reads or its closing reaches this connection, then close it.
      // What we wrote to it and the client missed is replayed by `resumeOn`.
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
    this.resumeOn(transport)
    if (this.paused) transport.pause()
    this.lastReceivedAt = this.store.now
    this.lastSentAt = this.store.now
    this.log.debug('stateful reconnect')
    this.onTransportDrain()
  }

  // ------------------------------------------------------------ reading

  /** Stops reading (no invocation slot, a full upload stream, onConnected still running). */
  protected pauseReading (): void {
    if (this.paused) return
    this.paused = true
    this.transport.pause()
  }

  /** Resumes reading; false when it was not paused or the connection is not open. */
  protected resumeReading (): boolean {
    if (!this.paused || this.state !== CONNECTED) return false
    this.paused = false
    this.transport.resume()
    return true
  }

  // ------------------------------------------------------------ heartbeat

  /**
   * Called by the store's one heartbeat. Each concern checks its own timer:
   * the transport's, the linger of a closed session, the wait for a stateful
   * client to come back, the hub layer's, and keep-alive.
   */
  tick (now: number): void {
    const options = this.options
    this.transport.tick?.(now, options.longPollTimeout, options.disconnectTimeout)
    if (this.state === CLOSED) {
      this.tickLinger(now)
      return
    }
    if (this.detachedAt !== 0) {
      this.tickDetached(now)
      return
    }
    this.tickHub(now)
    if (this.state === CONNECTED && this.transport.needsKeepAlive) this.tickKeepAlive(now)
  }

  /** A lingering transport (long polling's last poll) has had its grace period: forget the token. */
  private tickLinger (now: number): void {
    if (now - this.closedAt >= this.options.disconnectTimeout) this.store.remove(this)
  }

  /** A stateful client that did not come back within the disconnect timeout: the connection ends. */
  private tickDetached (now: number): void {
    if (now - this.detachedAt >= this.options.disconnectTimeout) this.transportEnded(this.detachError)
  }

  private tickKeepAlive (now: number): void {
    const options = this.options
    // While reading is paused the client's pings cannot arrive; ASP.NET pauses the timeout then too.
    if (!this.paused && now - this.lastReceivedAt >= options.clientTimeoutInterval) {
      this.timedOut()
      return
    }
    // Any message resets the client's server timeout, so only an idle connection needs a ping.
    if (now - this.lastSentAt >= options.keepAliveInterval) this.sendPing()
  }

  /** The client sent nothing, not even a ping, within `clientTimeoutInterval`. */
  protected abstract timedOut (): void

  // ------------------------------------------------------------ ending

  /** Marks the session closed and ends its transport; the token stays while the transport lingers. */
  protected closeTransport (): void {
    this.state = CLOSED
    this.closedAt = this.store.now
    // A paused transport could not read the client's side of the close handshake.
    if (this.paused) this.transport.resume()
    this.transport.close()
    if (!this.transport.lingersAfterClose) this.store.remove(this)
    this.onTransportDrain()
  }
}
