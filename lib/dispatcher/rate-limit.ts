/** A fixed-window limit: at most `max` calls per `timeWindow` ms. */
export interface RateLimit {
  max: number
  timeWindow: number
  /**
   * Refused calls within one window after which the connection is closed (a
   * client that ignores the errors). Absent: refusals never close it.
   */
  closeAfter?: number
}

/**
 * One window's count. Every invocation is counted, calls to unknown methods
 * included, so probing for methods costs the client like calling them.
 */
export class RateCounter {
  private readonly limit: RateLimit
  private windowStart = 0
  private count = 0
  private refused = 0

  constructor (limit: RateLimit) {
    this.limit = limit
  }

  /** Counts a call: 'ok', 'refuse' (over the limit) or 'close' (past `closeAfter` refusals). */
  take (now: number): 'ok' | 'refuse' | 'close' {
    if (now - this.windowStart >= this.limit.timeWindow) {
      this.windowStart = now
      this.count = 0
      this.refused = 0
    }
    if (++this.count <= this.limit.max) return 'ok'
    return this.refuse(now)
  }

  /** Records a refusal (also one made by a method's own limit) against `closeAfter`. */
  refuse (now: number): 'refuse' | 'close' {
    if (now - this.windowStart >= this.limit.timeWindow) {
      this.windowStart = now
      this.count = 0
      this.refused = 0
    }
    this.refused++
    const closeAfter = this.limit.closeAfter
    return closeAfter !== undefined && this.refused > closeAfter ? 'close' : 'refuse'
  }
}

export function rateLimitText (limit: RateLimit, target: string): string {
  return `Failed to invoke '${target}': rate limit exceeded (at most ${limit.max} calls per ${limit.timeWindow} ms).`
}
