/**
 * `maximumParallelInvocationsPerClient`: how many non-streaming invocations of
 * one connection may run at once. When none is free the connection stops
 * reading (as ASP.NET does), which keeps per-connection ordering and puts
 * backpressure on the client instead of queueing without bound.
 */
export class InvocationLimit {
  private active = 0
  private readonly max: number

  constructor (max: number) {
    this.max = max
  }

  tryAcquire (): boolean {
    if (this.active >= this.max) return false
    this.active++
    return true
  }

  /** Returns true when this release freed a slot a blocked reader may want. */
  release (): boolean {
    const wasFull = this.active >= this.max
    this.active--
    return wasFull
  }
}
