/**
 * The scale-out seam: a pub/sub bus between servers. It only moves bytes;
 * what they mean (targets, group changes, client results) is the scaled
 * lifetime manager's business, so a new bus is a small class.
 *
 * Channels are opaque UTF-8 strings built by the scaled lifetime manager
 * (they may contain any character, `.`, `*`, `>` and spaces included); a bus
 * whose names are restricted (NATS subjects) encodes them itself.
 */
export interface Backplane {
  /**
   * Publishes without waiting. A bus that cannot publish right now (Redis
   * down) drops the message and counts it instead of buffering without bound.
   */
  publish (channel: string, payload: Buffer): void
  /**
   * Publishes and resolves with how many subscribers received the message
   * (0: nobody is subscribed to `channel`, which is how a request for a
   * connection that no server has fails at once). Rejects when the bus cannot
   * publish right now. Used for requests (client results, group changes), not
   * for sends.
   */
  publishCounted (channel: string, payload: Buffer): Promise<number>
  /** Resolves once the bus has confirmed the subscription. */
  subscribe (channel: string, onMessage: (payload: Buffer) => void): Promise<void>
  unsubscribe (channel: string): Promise<void>
  /** Releases what the backplane opened itself (not connections it was given). */
  close (): Promise<void>
  /** Counters for telemetry and tests. */
  readonly stats: BackplaneStats
}

export interface BackplaneStats {
  /** Messages handed to the bus. */
  published: number
  /** Messages that arrived from the bus. */
  received: number
  /** Messages that could not be published (outage) or were lost while the subscriber was reconnecting, when the bus can tell. */
  dropped: number
}

export function newBackplaneStats (): BackplaneStats {
  return { published: 0, received: 0, dropped: 0 }
}

export function isBackplane (value: unknown): value is Backplane {
  if (value === null || typeof value !== 'object') return false
  const b = value as Record<string, unknown>
  return typeof b.publish === 'function' && typeof b.publishCounted === 'function' && typeof b.subscribe === 'function' &&
    typeof b.unsubscribe === 'function' && typeof b.close === 'function'
}
