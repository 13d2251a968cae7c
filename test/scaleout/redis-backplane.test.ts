// The Redis backplane on its own, against a private redis-server.
import { Redis } from 'ioredis'
import t from 'tap'
import { redisBackplane } from '../../lib/redis/index.js'
import { startRedis } from '../helpers/redis.js'
import { within } from './contract.js'

t.test('subscribing during the subscriber connection\'s handshake works, without a reconnect', async (t) => {
  const redis = await startRedis(t)
  const client = new Redis({ port: redis.port, host: '127.0.0.1' })
  t.teardown(() => { client.disconnect() })
  // Catch the duplicate the backplane subscribes on, to act inside its handshake window.
  let subscriber: Redis | undefined
  const duplicate = client.duplicate.bind(client)
  client.duplicate = (...args: Parameters<Redis['duplicate']>) => (subscriber = duplicate(...args))
  const backplane = redisBackplane({ redis: client })
  t.teardown(() => backplane.close())
  t.ok(subscriber, 'the backplane subscribes on a duplicate of the given client')
  const errors: string[] = []
  subscriber!.on('error', (err: Error) => { errors.push(err.message) })
  let reconnects = 0
  subscriber!.on('reconnecting', () => { reconnects++ })
  // The end of the handshake: 'ready', or the error that the refused ready check raises.
  const handshakeOver = new Promise<void>((resolve) => {
    subscriber!.once('ready', () => { resolve() })
    subscriber!.once('error', () => { resolve() })
  })

  const received: string[] = []
  const both = new Promise<void>((resolve) => {
    const take = (payload: Buffer): void => {
      received.push(payload.toString())
      if (received.length === 2) resolve()
    }
    // 'connect': TCP is up and ioredis is in its handshake (CLIENT SETINFO, then the ready check).
    // A server starting up subscribes whenever its hubs are ready, which can be right then.
    subscriber!.once('connect', () => {
      t.equal(subscriber!.status, 'connect')
      void Promise.all([backplane.subscribe('bus', take), backplane.subscribe('reply', take)]).then(async () => {
        await client.publish('bus', 'one')
        await client.publish('reply', 'two')
      })
    })
  })
  await within(handshakeOver, 'the subscriber\'s handshake to end')
  await within(both, 'both subscriptions to deliver')
  t.same(received, ['one', 'two'], 'both channels deliver')
  t.same(errors, [], 'the subscriber connection reported no error')
  t.equal(reconnects, 0, 'and was not dropped and reconnected')
  t.equal(backplane.droppedMessages, 0)
})
