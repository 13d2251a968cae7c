import type { Cluster, Redis } from 'ioredis'

/** The few pub/sub operations the backplane needs, for one Redis or a Cluster. */
export interface PubSubDriver {
  readonly kind: string
  canPublish (): boolean
  publisherReady (): Promise<void>
  /** Resolves with the number of subscribers that received it. */
  publish (channel: string, payload: Buffer): Promise<number>
  subscribe (channels: string[]): Promise<void>
  unsubscribe (channels: string[]): Promise<void>
  onMessage (handler: (channel: string, payload: Buffer) => void): void
  /** Called each time the subscriber connection is lost after it was subscribed. */
  onSubscriberLost (handler: () => void): void
  onError (handler: (err: Error, which: 'publisher' | 'subscriber') => void): void
  /** Closes the connections the driver made. */
  close (): Promise<void>
}

/**
 * What makes a publisher at-most-once: no offline queue (a publish while
 * disconnected fails at once and is counted), and commands in flight when the
 * connection drops are failed, not re-sent after the reconnect (which would
 * deliver them twice if Redis had already fanned them out).
 */
export const AT_MOST_ONCE = {
  enableOfflineQueue: false,
  autoResendUnfulfilledCommands: false,
  maxRetriesPerRequest: 0
} as const

/** Connection names (CLIENT LIST), so an operator can tell the backplane's connections apart. */
export const PUBLISHER_NAME = 'signalr-backplane-pub'
export const SUBSCRIBER_NAME = 'signalr-backplane-sub'

type ErrorHandler = (err: Error, which: 'publisher' | 'subscriber') => void

/**
 * ioredis emits 'error' on every failed reconnect (a Cluster also per node);
 * without listeners that would crash the process. Passes them to `handler`.
 */
function listenForErrors (publisher: Redis | Cluster, subscriber: Redis | Cluster, events: readonly string[]): { handler: ErrorHandler } {
  const errors = { handler: ((): void => {}) as ErrorHandler }
  for (const event of events) {
    publisher.on(event, (err: Error) => { errors.handler(err, 'publisher') })
    subscriber.on(event, (err: Error) => { errors.handler(err, 'subscriber') })
  }
  return errors
}

function readyPromise (client: { status: string, once (event: string, fn: () => void): unknown }): Promise<void> {
  if (client.status === 'ready') return Promise.resolve()
  return new Promise((resolve) => { client.once('ready', resolve) })
}

/**
 * One Redis: PUBLISH and SUBSCRIBE on two connections the backplane owns,
 * duplicated from the given client (a subscribed connection cannot publish).
 */
export function redisDriver (base: Redis, ownsBase: boolean): PubSubDriver {
  const publisher = base.duplicate({ ...AT_MOST_ONCE, lazyConnect: false, connectionName: PUBLISHER_NAME })
  // No ready check on the subscriber: the check's INFO is refused once a SUBSCRIBE has gone out,
  // which happens when we subscribe during the connection's handshake; ioredis would then drop
  // the connection and reject the pending SUBSCRIBE. Pub/sub needs no ready check.
  const subscriber = base.duplicate({ enableReadyCheck: false, lazyConnect: false, connectionName: SUBSCRIBER_NAME })
  const errors = listenForErrors(publisher, subscriber, ['error'])
  const stale = new Set<string>()
  subscriber.on('ready', () => {
    // After ioredis's own resubscription, which runs right after 'ready' is emitted.
    setImmediate(() => {
      if (stale.size === 0 || subscriber.status !== 'ready') return
      const channels = [...stale]
      stale.clear()
      subscriber.unsubscribe(...channels).catch(() => {})
    })
  })
  return {
    kind: 'redis',
    canPublish: () => publisher.status === 'ready',
    publisherReady: () => readyPromise(publisher),
    publish: (channel, payload) => publisher.publish(channel, payload),
    async subscribe (channels) {
      for (const channel of channels) stale.delete(channel)
      await subscriber.subscribe(...channels)
    },
    async unsubscribe (channels) {
      if (subscriber.status === 'ready') {
        await subscriber.unsubscribe(...channels)
        return
      }
      // Disconnected: an UNSUBSCRIBE would wait for Redis (and hold up a shutdown), yet ioredis
      // would resubscribe the channel on reconnect. Left for when the subscriber is back.
      for (const channel of channels) stale.add(channel)
    },
    onMessage (handler) {
      subscriber.on('messageBuffer', (channel: Buffer, message: Buffer) => { handler(channel.toString(), message) })
    },
    onSubscriberLost (handler) {
      let subscribed = false
      subscriber.on('ready', () => { subscribed = true })
      subscriber.on('close', () => {
        if (subscribed) handler()
        subscribed = false
      })
    },
    onError (handler) { errors.handler = handler },
    async close () {
      subscriber.disconnect()
      publisher.disconnect()
      if (ownsBase) base.disconnect()
    }
  }
}

/**
 * A Redis Cluster with sharded pub/sub (Redis 7: SPUBLISH/SSUBSCRIBE), so a
 * message goes only to the shard that owns its channel's slot instead of to
 * every node. The publisher and the subscriber are Clusters of their own made
 * with the given one's startup nodes and options; the subscriber keeps one
 * connection per master (ioredis's `shardedSubscribers`). Each channel is
 * subscribed on its own: a group's, a user's and a connection's channels
 * hash to different slots, which spreads them over the shards.
 */
export function clusterDriver (base: Cluster, ownsBase: boolean): PubSubDriver {
  const nodeOptions = base.options.redisOptions ?? {}
  const publisher = base.duplicate([], {
    enableOfflineQueue: false,
    // The Cluster itself re-sends a command whose node went away, or that met
    // CLUSTERDOWN, once the slot is served again: late, out of order, and
    // twice if the node had fanned it out. Failing it instead keeps at-most-once.
    retryDelayOnFailover: 0,
    retryDelayOnClusterDown: 0,
    lazyConnect: false,
    redisOptions: { ...nodeOptions, ...AT_MOST_ONCE, connectionName: PUBLISHER_NAME }
  })
  const subscriber = base.duplicate([], {
    shardedSubscribers: true,
    lazyConnect: false,
    redisOptions: { ...nodeOptions, connectionName: SUBSCRIBER_NAME }
  })
  const errors = listenForErrors(publisher, subscriber, ['error', 'node error', 'nodeError'])
  return {
    kind: 'redis-cluster',
    canPublish: () => publisher.status === 'ready',
    async publisherReady () {
      await readyPromise(publisher)
      // ioredis connects to a master on its first command; without an offline queue that
      // first command would fail. Connect to every master before the server counts as started.
      await Promise.all(publisher.nodes('master').map((node) => node.status === 'wait' ? node.connect() : readyPromise(node)))
    },
    publish: (channel, payload) => publisher.spublish(channel, payload) as Promise<number>,
    async subscribe (channels) {
      await Promise.all(channels.map((channel) => subscriber.ssubscribe(channel)))
    },
    async unsubscribe (channels) {
      if (subscriber.status !== 'ready') return
      await Promise.all(channels.map((channel) => subscriber.sunsubscribe(channel)))
    },
    onMessage (handler) {
      subscriber.on('smessageBuffer', (channel: Buffer, message: Buffer) => { handler(channel.toString(), message) })
    },
    onSubscriberLost (handler) {
      // One sharded subscriber connection per master. ioredis replaces a lost one, and again on
      // every failed attempt while its master is down, so one outage may count several gaps.
      subscriber.on('-subscriber', () => { handler() })
    },
    onError (handler) { errors.handler = handler },
    async close () {
      subscriber.disconnect()
      publisher.disconnect()
      if (ownsBase) base.disconnect()
    }
  }
}
