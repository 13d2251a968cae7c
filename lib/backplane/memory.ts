import type { BackplaneRouting } from '../lifetime/channels.js'
import { newBackplaneStats, type Backplane } from './backplane.js'

/** An in-process bus shared by several backplanes: the test double, and multi-app runs in one process. */
export class MemoryBus {
  readonly subscribers = new Map<string, Set<(payload: Buffer) => void>>()
}

/**
 * A backplane over a `MemoryBus`. Delivery is asynchronous, as over a network,
 * so code that works here does not rely on a publish being seen synchronously.
 */
export function memoryBackplane (bus: MemoryBus, options: { routing?: BackplaneRouting } = {}): Backplane & { readonly routing?: BackplaneRouting, readonly kind: string } {
  const mine = new Map<string, (payload: Buffer) => void>()
  const stats = newBackplaneStats()
  function deliver (handler: (payload: Buffer) => void, payload: Buffer): void {
    handler(payload)
  }
  function publish (channel: string, payload: Buffer): number {
    stats.published++
    const handlers = bus.subscribers.get(channel)
    if (handlers === undefined) return 0
    for (const handler of handlers) setImmediate(deliver, handler, payload)
    return handlers.size
  }
  return {
    routing: options.routing,
    kind: 'memory',
    stats,
    publish (channel, payload) {
      publish(channel, payload)
    },
    async publishCounted (channel, payload) {
      return publish(channel, payload)
    },
    async subscribe (channel, onMessage) {
      let handlers = bus.subscribers.get(channel)
      if (handlers === undefined) bus.subscribers.set(channel, handlers = new Set())
      // Counted on the receiving backplane's stats, not the publisher's.
      const counted = (payload: Buffer): void => {
        stats.received++
        onMessage(payload)
      }
      handlers.add(counted)
      mine.set(channel, counted)
    },
    async unsubscribe (channel) {
      const handler = mine.get(channel)
      if (handler === undefined) return
      mine.delete(channel)
      bus.subscribers.get(channel)?.delete(handler)
    },
    async close () {
      for (const channel of [...mine.keys()]) await this.unsubscribe(channel)
    }
  }
}
