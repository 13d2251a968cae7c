import { wallClock, type Clock } from '../clock.js'
import type { RouteContext } from '../http/route-context.js'
import { randomId, type TokenSigner } from './ids.js'

/** A negotiate answer whose client has not opened a transport yet. */
export interface PendingConnection {
  readonly pending: true
  readonly route: RouteContext
  readonly connectionId: string
  readonly token: string
  readonly createdAt: number
  /** Both sides agreed on stateful reconnect in negotiate. */
  readonly stateful: boolean
}

/** What the store needs of a live connection (lib/connection/connection.ts is one). */
export interface StoredConnection {
  readonly token: string
  readonly route: RouteContext
  readonly isConnected: boolean
  /** The heartbeat: each connection checks its own timers. */
  tick (now: number): void
  /** Server shutdown: close and wait for `onDisconnected`. */
  shutdown (): Promise<void>
}

export type ConnectionSlot<C extends StoredConnection = StoredConnection> = PendingConnection | C

const MIN_TICK = 10
const MAX_TICK = 1000

/**
 * Every connection of one plugin instance, keyed by secret token, and the
 * single heartbeat that drives keep-alive pings, handshake and client
 * timeouts, client-result deadlines and the expiry of unused negotiations
 * (ASP.NET's HttpConnectionManager scan): one timer for all connections.
 */
export class ConnectionStore<C extends StoredConnection = StoredConnection> {
  /** The plugin's one clock: everything that stamps or compares times reads it (directly or through `now`). */
  readonly clock: Clock
  /** `clock()` as of the last heartbeat: stamping a message then costs no clock read. */
  private tickedAt = 0
  private readonly slots = new Map<string, ConnectionSlot<C>>()
  private timer: NodeJS.Timeout | null = null
  private tickMs = MAX_TICK
  private closing = false
  /** Set when the servers share `connectionTokenSecret`. */
  private readonly signer: TokenSigner | null

  constructor (signer: TokenSigner | null = null, clock: Clock = wallClock) {
    this.signer = signer
    this.clock = clock
  }

  /**
   * The heartbeat's time, for connections to stamp activity with. Cached per
   * tick while the heartbeat runs (it lags by at most one tick); read from the
   * clock when it does not, so a server that sat idle before its first
   * connection never stamps the first ones with its start-up time.
   */
  get now (): number {
    return this.timer !== null ? this.tickedAt : this.clock()
  }

  get isClosing (): boolean {
    return this.closing
  }

  /** Makes the heartbeat at least fine enough for `interval` (the shortest configured timeout). */
  requireResolution (interval: number): void {
    const wanted = Math.max(MIN_TICK, Math.min(MAX_TICK, Math.floor(interval / 2)))
    if (wanted < this.tickMs) {
      this.tickMs = wanted
      if (this.timer !== null) this.restartTimer()
    }
  }

  /**
   * Records a negotiate answer (POST negotiate): a public id and a secret
   * token. The token is what `id=` carries; the public id may be shown to other
   * clients, so from version 1 on it never grants access to the connection.
   */
  createPending (route: RouteContext, negotiateVersion: number, stateful: boolean): PendingConnection {
    const connectionId = randomId()
    // Version 0 clients copy connectionId into `id=`, so there the two are the same (as in ASP.NET).
    const token = negotiateVersion < 1
      ? connectionId
      : this.signer !== null ? this.signer.issue(route.path, connectionId, this.clock(), stateful) : randomId()
    const slot: PendingConnection = { pending: true, route, connectionId, token, createdAt: this.now, stateful }
    this.slots.set(slot.token, slot)
    this.ensureTimer()
    return slot
  }

  /** Every open hub connection (negotiations without a transport excluded), for the explorer's monitor. */
  * connections (): IterableIterator<C> {
    for (const slot of this.slots.values()) {
      if (!('pending' in slot) && slot.isConnected) yield slot
    }
  }

  get (token: string): ConnectionSlot<C> | undefined {
    return this.slots.get(token)
  }

  /**
   * A WebSocket for a token this server did not issue: with a shared secret, a
   * genuine, fresh token from another server is as good as a local negotiation.
   */
  adopt (route: RouteContext, token: string): PendingConnection | undefined {
    if (this.signer === null) return undefined
    const claims = this.signer.verify(route.path, token, this.clock(), route.options.disconnectTimeout)
    if (claims === null) return undefined
    const slot: PendingConnection = { pending: true, route, connectionId: claims.connectionId, token, createdAt: this.now, stateful: claims.stateful }
    this.slots.set(token, slot)
    this.ensureTimer()
    return slot
  }

  add (connection: C): void {
    this.slots.set(connection.token, connection)
    this.ensureTimer()
  }

  remove (connection: { readonly token: string }): void {
    if (this.slots.get(connection.token) === connection) this.slots.delete(connection.token)
  }

  tick (): void {
    const now = this.tickedAt = this.clock()
    for (const slot of this.slots.values()) {
      if ('pending' in slot) {
        if (now - slot.createdAt >= slot.route.options.disconnectTimeout) this.slots.delete(slot.token)
      } else {
        slot.tick(now)
      }
    }
  }

  /**
   * Closes every connection with `allowReconnect` and waits for their
   * `onDisconnected` hooks; afterwards nothing of ours keeps the process alive.
   */
  async shutdown (): Promise<void> {
    this.closing = true
    const endings: Array<Promise<void>> = []
    for (const slot of this.slots.values()) {
      if (!('pending' in slot)) endings.push(slot.shutdown())
    }
    this.slots.clear()
    if (this.timer !== null) {
      clearInterval(this.timer)
      this.timer = null
    }
    await Promise.all(endings)
  }

  private ensureTimer (): void {
    if (this.timer === null && !this.closing) this.restartTimer()
  }

  private restartTimer (): void {
    if (this.timer !== null) clearInterval(this.timer)
    // Stamps taken before the first tick must be as fresh as the ones after it.
    this.tickedAt = this.clock()
    this.timer = setInterval(storeTick, this.tickMs, this)
    // The heartbeat alone must never keep the process running.
    this.timer.unref()
  }
}

function storeTick (store: ConnectionStore): void {
  store.tick()
}
