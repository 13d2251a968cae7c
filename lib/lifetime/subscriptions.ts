import type { Backplane } from '../backplane/backplane.js'

/** A backplane is user code: one that throws instead of rejecting must not break a group change. */
function guarded (call: () => Promise<void>): Promise<void> {
  try {
    return call()
  } catch (err) {
    return Promise.reject(err)
  }
}

interface Entry {
  count: number
  ready: Promise<void>
  failed: boolean
}

/**
 * Reference-counted channel subscriptions: the first local member of a group,
 * user or connection subscribes its channel, the last one to leave
 * unsubscribes it. Everyone who joins while the subscription is being made
 * waits for the same confirmation.
 */
export class ChannelSubscriptions {
  private readonly entries = new Map<string, Entry>()
  private readonly backplane: Backplane
  private readonly onError: (err: unknown, channel: string) => void

  constructor (backplane: Backplane, onError: (err: unknown, channel: string) => void) {
    this.backplane = backplane
    this.onError = onError
  }

  has (channel: string): boolean { return this.entries.has(channel) }

  /** The confirmation of a channel already held. */
  ready (channel: string): Promise<void> { return this.entries.get(channel)?.ready ?? Promise.resolve() }

  /** Takes one reference; resolves once the backplane has confirmed the subscription. */
  acquire (channel: string, onMessage: (payload: Buffer) => void): Promise<void> {
    let entry = this.entries.get(channel)
    if (entry === undefined) {
      entry = { count: 0, ready: null as unknown as Promise<void>, failed: true }
      this.entries.set(channel, entry)
    }
    entry.count++
    // A failed subscription is made again by the next member rather than remembered.
    if (entry.failed) this.subscribe(channel, entry, onMessage)
    return entry.ready
  }

  private subscribe (channel: string, entry: Entry, onMessage: (payload: Buffer) => void): void {
    entry.failed = false
    entry.ready = guarded(() => this.backplane.subscribe(channel, onMessage))
    entry.ready.catch((err: unknown) => {
      entry.failed = true
      this.onError(err, channel)
    })
  }

  /** Drops one reference; the last one unsubscribes. */
  release (channel: string): void {
    const entry = this.entries.get(channel)
    if (entry === undefined) return
    if (--entry.count > 0) return
    this.entries.delete(channel)
    guarded(() => this.backplane.unsubscribe(channel)).catch((err: unknown) => { this.onError(err, channel) })
  }

  /** Unsubscribes everything (shutdown). */
  async clear (): Promise<void> {
    const channels = [...this.entries.keys()]
    this.entries.clear()
    await Promise.all(channels.map((channel) => guarded(() => this.backplane.unsubscribe(channel)).catch((err: unknown) => { this.onError(err, channel) })))
  }
}
