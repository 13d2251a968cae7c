import type { FastifyBaseLogger } from 'fastify'
import type { Redis, RedisOptions } from 'ioredis'
import { newBackplaneStats, type Backplane } from '../backplane/backplane.js'

export interface RedisBackplaneOptions {
  /**
   * An ioredis client, which stays yours to close: it publishes, and the
   * backplane subscribes on a duplicate of it that it closes itself. Or
   * ioredis options, from which the backplane makes (and closes) its own client.
   */
  redis: Redis | RedisOptions
  /** Channel prefix, so several apps can share one Redis. Default `signalr:`. */
  prefix?: string
  /** Logger for outages; the plugin passes the Fastify logger when absent. */
  log?: FastifyBaseLogger
}

export interface RedisBackplane extends Backplane {
  readonly prefix: string
  /** Messages dropped because Redis could not take them (an outage). */
  readonly droppedMessages: number
  /** Gives the backplane the app's logger (the plugin calls it). */
  setLogger (log: FastifyBaseLogger): void
}

const LOG_EVERY_MS = 5000

/**
 * The Redis backplane: PUBLISH on the given client, SUBSCRIBE on a duplicate
 * (a subscribed Redis connection cannot publish). During an outage messages
 * are dropped and counted, never queued without bound; ioredis reconnects and
 * resubscribes by itself.
 */
export function createRedisBackplane (publisher: Redis, ownsPublisher: boolean, options: RedisBackplaneOptions): RedisBackplane {
  const prefix = options.prefix ?? 'signalr:'
  let log = options.log
  // The duplicate must not queue while offline either: what it would send is only (re)subscriptions.
  // No ready check on it: the check's INFO is refused once a SUBSCRIBE has gone out, which
  // happens when we subscribe during the connection's handshake; ioredis then drops the
  // connection and rejects the pending SUBSCRIBE (a failed start). Pub/sub needs no ready check.
  const subscriber = publisher.duplicate({ enableReadyCheck: false })
  const handlers = new Map<string, (payload: Buffer) => void>()
  const stats = newBackplaneStats()
  let lastLog = 0

  subscriber.on('messageBuffer', (channel: Buffer, message: Buffer) => {
    stats.received++
    handlers.get(channel.toString())?.(message)
  })
  // ioredis emits 'error' on every failed reconnect; without listeners that would crash the process.
  subscriber.on('error', (err: Error) => { log?.debug({ err }, 'redis backplane subscriber error') })
  if (ownsPublisher) publisher.on('error', (err: Error) => { log?.debug({ err }, 'redis backplane publisher error') })

  function drop (err?: Error): void {
    stats.dropped++
    const now = Date.now()
    if (now - lastLog >= LOG_EVERY_MS) {
      lastLog = now
      log?.warn({ err, dropped: stats.dropped }, 'redis backplane cannot publish; messages to other servers are being dropped')
    }
  }

  return {
    prefix,
    stats,
    get droppedMessages () { return stats.dropped },
    setLogger (logger) { log ??= logger },
    publish (channel, payload) {
      if (publisher.status !== 'ready') {
        drop()
        return
      }
      stats.published++
      publisher.publish(channel, payload).catch(drop)
    },
    async publishCounted (channel, payload) {
      if (publisher.status !== 'ready') throw new Error('The Redis backplane is not connected.')
      stats.published++
      return await publisher.publish(channel, payload)
    },
    async subscribe (channel, onMessage) {
      handlers.set(channel, onMessage)
      await subscriber.subscribe(channel)
    },
    async unsubscribe (channel) {
      handlers.delete(channel)
      if (subscriber.status === 'ready') await subscriber.unsubscribe(channel)
    },
    async close () {
      handlers.clear()
      subscriber.disconnect()
      if (ownsPublisher) publisher.disconnect()
    }
  }
}
