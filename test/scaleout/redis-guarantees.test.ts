// What the Redis backplane promises when its connections drop: a publish in
// flight is failed and counted, never re-sent (no duplicates), and a lost
// subscriber connection is counted as a gap. Connections are cut from Redis's
// side with CLIENT KILL, on a private redis-server.
import { Redis } from 'ioredis'
import t from 'tap'
import { redisBackplane } from '../../lib/redis/index.js'
import { startRedis } from '../helpers/redis.js'
import { within } from './contract.js'

async function clientId (admin: Redis, name: string): Promise<string> {
  const list = await admin.client('LIST') as string
  const line = list.split('\n').find((l) => l.includes(` name=${name} `))
  if (line === undefined) throw new Error(`no client named ${name}`)
  return /id=(\d+)/.exec(line)![1]!
}

t.test('publishes in flight when the connection drops are dropped and counted, not re-sent after the reconnect', async (t) => {
  const redis = await startRedis(t)
  const admin = new Redis({ port: redis.port, host: '127.0.0.1' })
  const client = new Redis({ port: redis.port, host: '127.0.0.1' })
  const watcher = new Redis({ port: redis.port, host: '127.0.0.1' })
  t.teardown(() => { admin.disconnect(); client.disconnect(); watcher.disconnect() })
  const backplane = redisBackplane({ redis: client })
  t.teardown(() => backplane.close())
  await backplane.subscribe('unused', () => {}) // resolves once the publisher is ready too

  const got: string[] = []
  watcher.on('message', (_channel: string, message: string) => { got.push(message) })
  await watcher.subscribe('ch')

  // Paused, Redis holds the PUBLISHes unanswered; then their connection is cut.
  await admin.client('PAUSE', 10_000, 'WRITE')
  const COUNT = 5
  for (let i = 0; i < COUNT; i++) backplane.publish('ch', Buffer.from(`inflight-${i}`))
  await admin.client('KILL', 'ID', await clientId(admin, 'signalr-backplane-pub'))
  await admin.client('UNPAUSE')

  const marker = new Promise<void>((resolve) => { watcher.on('message', (_c: string, m: string) => { if (m === 'marker') resolve() }) })
  // ioredis reconnects the publisher; a publish goes through once it is ready again.
  const published = (async () => {
    for (;;) {
      try {
        await backplane.publishCounted('ch', Buffer.from('marker'))
        return
      } catch {
        await new Promise((resolve) => { setTimeout(resolve, 20) }) // polling while ioredis reconnects
      }
    }
  })()
  await within(published, 'the publisher to be back')
  await within(marker, 'the marker')
  t.same(got, ['marker'], 'none of the in-flight messages was delivered, before or after the reconnect')
  t.equal(backplane.droppedMessages, COUNT, 'each of them counted as dropped')
})

t.test('a lost subscriber connection is counted as a gap and resubscribed', async (t) => {
  const redis = await startRedis(t)
  const admin = new Redis({ port: redis.port, host: '127.0.0.1' })
  const client = new Redis({ port: redis.port, host: '127.0.0.1' })
  t.teardown(() => { admin.disconnect(); client.disconnect() })
  const backplane = redisBackplane({ redis: client })
  t.teardown(() => backplane.close())
  const got: string[] = []
  let waiter: ((m: string) => void) | null = null
  await backplane.subscribe('ch', (payload) => { got.push(payload.toString()); waiter?.(payload.toString()) })
  t.equal(backplane.subscriberGaps, 0)

  await admin.client('KILL', 'ID', await clientId(admin, 'signalr-backplane-sub'))
  // Publish until one arrives: the subscriber is back and subscribed again.
  const back = new Promise<void>((resolve) => { waiter = (m) => { if (m.startsWith('probe')) resolve() } })
  let probes = 0
  const probing = setInterval(() => { void admin.publish('ch', `probe-${probes++}`) }, 20)
  t.teardown(() => { clearInterval(probing) })
  await within(back, 'the subscriber to resubscribe')
  clearInterval(probing)
  t.equal(backplane.subscriberGaps, 1, 'one gap counted')
  t.ok(got.length <= probes, `probes published during the gap are lost, and Redis cannot say how many (${probes - got.length} of ${probes})`)
})
