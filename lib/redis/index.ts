import { createRequire } from 'node:module'
import type { Cluster, Redis } from 'ioredis'
import { ROUTINGS } from '../lifetime/channels.js'
import { createRedisBackplane, type RedisBackplane, type RedisBackplaneOptions } from './redis-backplane.js'
import { clusterDriver, redisDriver } from './driver.js'
import { codes, describeValue } from '../errors.js'

export type { RedisBackplane, RedisBackplaneOptions } from './redis-backplane.js'
export { createHubEmitter } from '../emitter/index.js'
export type { HubEmitter, HubEmitterOptions } from '../emitter/index.js'

function isRedisClient (value: unknown): value is Redis | Cluster {
  return value !== null && typeof value === 'object' && typeof (value as Redis).duplicate === 'function' &&
    typeof (value as Redis).publish === 'function'
}

/**
 * Scale-out over Redis (AddStackExchangeRedis): every selector, group change
 * and client result works across the servers sharing the Redis. An ioredis
 * `Cluster` uses sharded pub/sub (Redis 7).
 *
 * @example
 * await app.register(signalr, { backplane: redisBackplane({ redis: new Redis(process.env.REDIS_URL) }) })
 */
export function redisBackplane (options: RedisBackplaneOptions): RedisBackplane {
  if (options === null || typeof options !== 'object' || options.redis === null || typeof options.redis !== 'object') {
    throw new codes.SIGNALR_ERR_INVALID_OPTION('redisBackplane', `option "redis" must be an ioredis client or Cluster, or ioredis options; got ${describeValue(options?.redis)}`)
  }
  if (options.prefix !== undefined && typeof options.prefix !== 'string') {
    throw new codes.SIGNALR_ERR_INVALID_OPTION('redisBackplane', `option "prefix" must be a string; got ${describeValue(options.prefix)}`)
  }
  if (options.routing !== undefined && !ROUTINGS.includes(options.routing)) {
    throw new codes.SIGNALR_ERR_INVALID_OPTION('redisBackplane', `option "routing" must be one of ${ROUTINGS.join(', ')}; got ${describeValue(options.routing)}`)
  }
  if (isRedisClient(options.redis)) {
    const driver = options.redis.isCluster ? clusterDriver(options.redis as Cluster, false) : redisDriver(options.redis as Redis, false)
    return createRedisBackplane(driver, options)
  }
  // ioredis is an optional peer dependency: load it only when asked to make a client.
  const IORedis = createRequire(import.meta.url)('ioredis') as typeof import('ioredis')
  const client = new IORedis.Redis({ lazyConnect: true, ...options.redis })
  return createRedisBackplane(redisDriver(client, true), options)
}
