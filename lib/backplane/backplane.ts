/**
 * The scale-out seam: a pub/sub bus between servers. It only moves bytes;
 * what they mean (targets, group changes, client results) is the scaled
 * lifetime manager's business, so a new bus is a small class.
 */
export interface Backplane {
  /**
   * Publishes without waiting. A bus that cannot publish right now (Redis
   * down) drops the message and counts it instead of buffering without bound.
   */
  publish (channel: string, payload: Buffer): void
  subscribe (channel: string, onMessage: (payload: Buffer) => void): Promise<void>
  unsubscribe (channel: string): Promise<void>
  /** Releases what the backplane opened itself (not connections it was given). */
  close (): Promise<void>
}

export function isBackplane (value: unknown): value is Backplane {
  if (value === null || typeof value !== 'object') return false
  const b = value as Record<string, unknown>
  return typeof b.publish === 'function' && typeof b.subscribe === 'function' &&
    typeof b.unsubscribe === 'function' && typeof b.close === 'function'
}
