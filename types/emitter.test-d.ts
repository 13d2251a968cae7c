import { Cluster, Redis } from 'ioredis'
import { z } from 'zod'
import { defineHub, memoryBackplane, MemoryBus, type GroupManager } from '../lib/index.js'
import { createHubEmitter, redisBackplane, type HubEmitter, type RedisBackplane } from '../lib/redis/index.js'
import type { Equal, Expect } from './helpers.js'

const chat = defineHub({
  name: 'chat',
  client: {
    ReceiveMessage: [z.string(), z.string()],
    GetMessage: { args: [], returns: z.string() }
  },
  methods: { Ping: { args: [], handler: () => 'pong' } }
})
const untyped = defineHub({ methods: { Ping: { args: [], handler: () => 'pong' } } })

async function worker (): Promise<void> {
  const backplane = redisBackplane({ redis: new Redis() })
  type _backplane = Expect<Equal<typeof backplane, RedisBackplane>>
  const emitter = createHubEmitter({ backplane, hub: chat })
  type _groups = Expect<Equal<typeof emitter.groups, GroupManager>>
  type _emitter = Expect<Equal<typeof emitter, HubEmitter<{
    readonly ReceiveMessage: readonly [z.ZodString, z.ZodString]
    readonly GetMessage: { readonly args: readonly [], readonly returns: z.ZodString }
  }>>>

  await emitter.clients.group('g').send('ReceiveMessage', 'cron', 'hi')
  await emitter.clients.groups(['a', 'b']).send('ReceiveMessage', 'cron', 'hi')
  await emitter.clients.users(['u']).send('ReceiveMessage', 'cron', 'hi')
  await emitter.clients.allExcept(['id']).send('ReceiveMessage', 'cron', 'hi')
  await emitter.clients.groupExcept('g', ['id']).send('ReceiveMessage', 'cron', 'hi')
  const answer = emitter.clients.client('id').invoke('GetMessage')
  type _answer = Expect<Equal<typeof answer, Promise<string>>>
  await emitter.groups.add('id', 'g')
  const closed = emitter.close()
  type _closed = Expect<Equal<typeof closed, Promise<void>>>

  // @ts-expect-error typed by the hub's client map: wrong argument type
  await emitter.clients.all.send('ReceiveMessage', 'cron', 1)
  // @ts-expect-error typed by the hub's client map: unknown method
  await emitter.clients.all.send('Receive', 'cron', 'hi')
  // @ts-expect-error no caller outside a hub method
  void emitter.clients.caller

  // Any backplane; a hub without a name needs the path it is mapped at.
  const loose = createHubEmitter({ backplane: memoryBackplane(new MemoryBus()), hub: untyped, name: '/chat' })
  await loose.clients.all.send('Anything', 1, 2)

  // A Cluster works as `redis`, and `routing` is the benchmarking switch.
  redisBackplane({ redis: new Cluster([{ host: '127.0.0.1', port: 7000 }]), routing: 'hub' })
  // @ts-expect-error only 'hub' or 'targeted'
  redisBackplane({ redis: new Redis(), routing: 'everywhere' })
  // @ts-expect-error `backplane` is required
  createHubEmitter({ hub: chat })
}
void worker
