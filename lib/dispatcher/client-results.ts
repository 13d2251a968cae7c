import { codes, HubError } from '../errors.js'

interface PendingResult {
  readonly method: string
  readonly deadline: number
  resolve (value: unknown): void
  reject (error: Error): void
}

/**
 * Server-to-client invocations awaiting the client's Completion. Ids use an
 * `s` prefix so they can never collide with the client's own numeric ids.
 * Deadlines are checked by the shared heartbeat, so no timer per call.
 */
export class ClientResults {
  private readonly pending = new Map<string, PendingResult>()
  private counter = 0

  /** Registers a pending result and returns its invocation id. */
  add (method: string, deadline: number, resolve: (value: unknown) => void, reject: (error: Error) => void): string {
    const id = `s${++this.counter}`
    this.pending.set(id, { method, deadline, resolve, reject })
    return id
  }

  /** Settles a pending result from the client's Completion; false if the id is not ours. */
  complete (invocationId: string, error: string | undefined, result: unknown): boolean {
    const entry = this.pending.get(invocationId)
    if (entry === undefined) return false
    this.pending.delete(invocationId)
    if (error !== undefined) entry.reject(new HubError(error))
    else entry.resolve(result)
    return true
  }

  /** Rejects one pending result with `error` (its Invocation could not be sent). */
  fail (invocationId: string, error: Error): void {
    const entry = this.pending.get(invocationId)
    if (entry === undefined) return
    this.pending.delete(invocationId)
    entry.reject(error)
  }

  /** Rejects results whose deadline has passed. */
  expire (now: number, timeoutMs: number): void {
    if (this.pending.size === 0) return
    for (const [id, entry] of this.pending) {
      if (entry.deadline <= now) {
        this.pending.delete(id)
        entry.reject(new codes.SIGNALR_ERR_CLIENT_RESULT_TIMEOUT(timeoutMs, entry.method))
      }
    }
  }

  rejectAll (error: Error): void {
    for (const entry of this.pending.values()) entry.reject(error)
    this.pending.clear()
  }
}
