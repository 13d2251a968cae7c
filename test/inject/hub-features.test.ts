import Fastify, { type FastifyInstance } from 'fastify'
import t, { type Test } from 'tap'
import { z } from 'zod'
import signalr, { defineHub, type SignalRPluginOptions } from '../../lib/index.js'

const events: string[] = []

const rooms = defineHub({
  client: { Said: [z.string(), z.string()] },
  methods: {
    Join: { args: [z.string()], async handler (hub, room) { await hub.groups.add(hub.connectionId, room) } },
    Say: { args: [z.string(), z.string()], async handler (hub, room, text) { await hub.clients.group(room).send('Said', hub.userId ?? '?', text) } },
    Blob: {
      args: [z.number(), z.number()],
      stream: true,
      async * handler (hub, count, size) { for (let i = 0; i < count && !hub.signal.aborted; i++) yield 'x'.repeat(size) + String(i) }
    },
    Fail: { args: [], handler () { throw new Error('secret detail') } }
  },
  onConnected (hub) { events.push(`connected ${hub.userId ?? '?'}`) },
  onDisconnected (hub, error) { events.push(`disconnected ${hub.userId ?? '?'} ${error === undefined ? 'clean' : 'error'}`) }
})

async function appWith (t: Test, options: SignalRPluginOptions = {}): Promise<FastifyInstance> {
  const app = Fastify()
  t.teardown(() => app.close())
  await app.register(signalr, { getUserId: (request) => request.headers['x-user'] as string | undefined, ...options })
  app.mapHub('/rooms', rooms)
  return app
}

t.test('groups, users and the lifecycle run over injected connections', async (t) => {
  events.length = 0
  const app = await appWith(t)
  const ada = await app.signalr.inject('/rooms', { headers: { 'x-user': 'ada' } })
  const bob = await app.signalr.inject('/rooms', { headers: { 'x-user': 'bob' }, protocol: 'messagepack' })
  const eve = await app.signalr.inject('/rooms', { headers: { 'x-user': 'eve' } })
  await ada.invoke('Join', 'blue')
  await bob.invoke('Join', 'blue')
  let eveHeard = 0
  eve.on('Said', () => { eveHeard++ })
  const bobHears = new Promise<string[]>((resolve) => { bob.on('Said', (user: string, text: string) => { resolve([user, text]) }) })
  const adaHears = new Promise<string[]>((resolve) => { ada.on('Said', (user: string, text: string) => { resolve([user, text]) }) })
  await ada.invoke('Say', 'blue', 'hello')
  t.same(await bobHears, ['ada', 'hello'], 'a MessagePack member hears a JSON member')
  t.same(await adaHears, ['ada', 'hello'])
  // eve is no member: a round trip on her connection comes after anything sent to her before.
  await eve.invoke('Join', 'red')
  t.equal(eveHeard, 0)
  await Promise.all([ada.stop(), bob.stop(), eve.stop()])
  t.same(events.slice(0, 3).sort(), ['connected ada', 'connected bob', 'connected eve'])
  t.same(events.slice(3).sort(), ['disconnected ada clean', 'disconnected bob clean', 'disconnected eve clean'])
})

t.test('errors keep their detail rules over inject', async (t) => {
  const app = await appWith(t)
  const connection = await app.signalr.inject('/rooms')
  const error = await connection.invoke('Fail').then(() => null, (err: Error) => err)
  t.match(error?.message, /An unexpected error occurred invoking 'Fail' on the server/)
  t.notMatch(error?.message, /secret detail/)
  await connection.stop()
})

t.test('a stream larger than the send buffer waits for the client and arrives whole', async (t) => {
  const app = await appWith(t, { applicationMaxBufferSize: 4096 })
  const connection = await app.signalr.inject('/rooms')
  const items: string[] = []
  await new Promise<void>((resolve, reject) => {
    connection.stream<string>('Blob', 300, 2000).subscribe({ next: (item) => { items.push(item) }, complete: resolve, error: reject })
  })
  t.equal(items.length, 300)
  t.equal(items[299], 'x'.repeat(2000) + '299')
  await connection.stop()
})
