import type { Backplane } from './backplane.js'

/** An in-process bus shared by several backplanes: the test double, and multi-app runs in one process. */
export class MemoryBus {
  readonly subscribers = new Map<string, Set<(payload: Buffer) => void>>()
}

/**
 * A backplane over a `MemoryBus`. Delivery is asynchronous, as over a network,
 * so code that works here does not rely on a publish being seen synchronously.
 */
export function memoryBackplane (bus: MemoryBus): Backplane {
  const mine = new Map<string, (payload: Buffer) => void>()
  return {
    publish (channel, payload) {
      const handlers = bus.subscribers.get(channel)
      if (handlers === undefined) return
      for (const handler of handlers) setImmediate(handler, payload)
    },
    async subscribe (channel, onMessage) {
      let handlers = bus.subscribers.get(channel)
      if (handlers === undefined) bus.subscribers.set(channel, handlers = new Set())
      handlers.add(onMessage)
      mine.set(channel, onMessage)
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
