/**
 * fastify-signalr JSON for the scale-out benchmark (bench/redis.ts): the same
 * hub as ./signalr-json.ts, with the Redis backplane when a Redis port is given.
 *
 *   signalr-redis.ts <port> [redisPort]    (no redisPort, or 0: in-memory, no backplane)
 */
import { Redis } from 'ioredis'
import { redisBackplane } from '../../lib/redis/index.js'
import { serveBenchHub } from './signalr-hub.js'

const redisPort = Number(process.argv[3] ?? 0)
if (!Number.isInteger(redisPort) || redisPort < 0 || redisPort > 65535) throw new Error(`bad Redis port ${process.argv[3]}`)

if (redisPort === 0) {
  await serveBenchHub('json')
} else {
  const redis = new Redis({ port: redisPort, host: '127.0.0.1' })
  // Without a listener ioredis prints every failed reconnect; the driver sees a dead Redis as missing deliveries.
  redis.on('error', () => {})
  await serveBenchHub('json', { backplane: redisBackplane({ redis }) })
}
