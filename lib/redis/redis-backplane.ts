import type { FastifyBaseLogger } from 'fastify'
import type { Cluster, Redis, RedisOptions } from 'ioredis'
import { newBackplaneStats, type Backplane } from '../backplane/backplane.js'
import { dropCounter } from '../backplane/drop-log.js'
import type { BackplaneRouting } from '../lifetime/channels.js'
import type { PubSubDriver } from './driver.js'

export interface RedisBackplaneOptions {
  /**
   * An ioredis client or Cluster, which stays yours to close: the backplane
   * publishes and subscribes on connections of its own made from it (with
   * its options) and closes those. Or ioredis options, from which it makes
   * its own.
   */
  redis: Redis | Cluster | RedisOptions
  /** Channel prefix, so several apps can share one Redis. Default `signalr:`. */
  prefix?: string
  /** Logger for outages; the plugin passes the Fastify logger when absent. */
  log?: FastifyBaseLogger
  /**
   * Benchmarking switch: `'hub'` routes everything over one channel per hub
   * that every server receives (the former design, the baseline of
   * `bench:cluster`). The default, `'targeted'`, is what to run.
   */
  routing?: BackplaneRouting
}

export interface RedisBackplane extends Backplane {
  readonly prefix: string
  readonly routing: BackplaneRouting
  /** `redis` or `redis-cluster` (the `signalr.backplane` attribute of the metrics). */
  readonly kind: string
  /** Messages dropped because Redis could not take them (an outage). */
  readonly droppedMessages: number
  /**
   * Times the subscriber connection was lost and made again. Whatever was
   * published meanwhile on this server's channels is lost, and Redis cannot
   * tell how much that was.
   */
  readonly subscriberGaps: number
  /** Gives the backplane the app's logger (the plugin calls it). */
  setLogger (log: FastifyBaseLogger): void
}

/**
 * The Redis backplane over a driver (one Redis, or a Cluster with sharded
 * pub/sub). During an outage messages are dropped and counted, never queued:
 * the publishing connection has no offline queue and never re-sends a
 * command after a reconnect, so no message is delivered twice. Subscriptions
 * made in one tick go to Redis as one command; ioredis resubscribes by itself
 * after a reconnect.
 */
export function createRedisBackplane (driver: PubSubDriver, options: RedisBackplaneOptions): RedisBackplane {
  const prefix = options.prefix ?? 'signalr:'
  const routing = options.routing ?? 'targeted'
  let log = options.log
  const handlers = new Map<string, (payload: Buffer) => void>()
  const stats = newBackplaneStats()
  let gaps = 0
  const drop = dropCounter(stats, 'redis', () => log)

  // Subscription changes of one tick, sent together.
  let toSubscribe = new Set<string>()
  let toUnsubscribe = new Set<string>()
  let flush: Promise<void> | null = null

  driver.onMessage((channel, payload) => {
    stats.received++
    handlers.get(channel)?.(payload)
  })
  driver.onSubscriberLost(() => {
    gaps++
    log?.warn({ gaps }, 'redis backplane subscriber disconnected; messages for this server are lost until it resubscribes')
  })
  driver.onError((err, which) => { log?.debug({ err }, `redis backplane ${which} error`) })

  function scheduleFlush (): Promise<void> {
    flush ??= new Promise<void>((resolve) => { setImmediate(resolve) }).then(async () => {
      flush = null
      const subscribe = [...toSubscribe]
      const unsubscribe = [...toUnsubscribe]
      toSubscribe = new Set()
      toUnsubscribe = new Set()
      const done: Array<Promise<void>> = []
      if (unsubscribe.length > 0) done.push(driver.unsubscribe(unsubscribe))
      if (subscribe.length > 0) done.push(driver.subscribe(subscribe))
      await Promise.all(done)
    })
    return flush
  }

  return {
    prefix,
    routing,
    kind: driver.kind,
    stats,
    get droppedMessages () { return stats.dropped },
    get subscriberGaps () { return gaps },
    setLogger (logger) { log ??= logger },
    publish (channel, payload) {
      if (!driver.canPublish()) {
        drop()
        return
      }
      stats.published++
      driver.publish(channel, payload).catch(drop)
    },
    async publishCounted (channel, payload) {
      if (!driver.canPublish()) throw new Error('The Redis backplane is not connected.')
      stats.published++
      return await driver.publish(channel, payload)
    },
    async subscribe (channel, onMessage) {
      handlers.set(channel, onMessage)
      toUnsubscribe.delete(channel)
      toSubscribe.add(channel)
      // Starting needs the publisher too: a server that cannot publish should not look ready.
      await Promise.all([scheduleFlush(), driver.publisherReady()])
    },
    async unsubscribe (channel) {
      if (!handlers.delete(channel)) return
      toSubscribe.delete(channel)
      toUnsubscribe.add(channel)
      await scheduleFlush()
    },
    async close () {
      handlers.clear()
      await driver.close()
    }
  }
}
