// A third hub protocol across a backplane: its encoding travels in the SEND
// envelope beside the JSON and MessagePack ones, and a server serving it takes
// those bytes as they are; a server whose peers do not know it writes them
// from the envelope's MessagePack form, once per message.
import { Redis } from 'ioredis'
import t, { type Test } from 'tap'
import { z } from 'zod'
import { defineHub, MemoryBus, memoryBackplane, type Backplane, type SignalRPluginOptions } from '../../lib/index.js'
import { redisBackplane } from '../../lib/redis/index.js'
import { startApp } from '../helpers/app.js'
import { connect, nextMessage, signalR } from '../helpers/clients.js'
import { LineClientProtocol, LineProtocol } from '../helpers/line-protocol.js'
import { startRedis } from '../helpers/redis.js'
import { newOrigin, pack, SEND } from '../../lib/lifetime/envelope.js'
import { externalSendAllEnvelope, readPayload } from './envelopes.js'
import { within } from './contract.js'

const hub = defineHub({
  name: 'proto',
  methods: {
    Shout: { args: [z.string()], handler: (h, s) => h.clients.all.send('msg', s, new Uint8Array([7, 8])) }
  }
})

/** Backplanes for the servers, a watcher of the all channel, and an outside publisher on it. */
interface Bus {
  backplane (): Backplane
  watch (onPayload: (payload: Buffer) => void): Promise<void>
  publish (payload: Buffer): Promise<void>
}

/** The first SEND envelope published on the all channel from now on. */
async function firstSend (bus: Bus): Promise<{ sent: Promise<unknown[]> }> {
  let resolve!: (envelope: unknown[]) => void
  const sent = new Promise<unknown[]>((_resolve) => { resolve = _resolve })
  await bus.watch((payload) => {
    const { envelope } = readPayload(payload)
    if (envelope[0] === 1) resolve(envelope)
  })
  return { sent }
}

async function start (t: Test, bus: Bus, protocols: SignalRPluginOptions['protocols']): Promise<string> {
  const { baseUrl } = await startApp(t, (app) => { app.mapHub('/hub', hub) }, { backplane: bus.backplane(), protocols })
  return `${baseUrl}/hub`
}

async function linesClient (t: Test, url: string): Promise<signalR.HubConnection> {
  const connection = new signalR.HubConnectionBuilder()
    .withUrl(url, { transport: signalR.HttpTransportType.WebSockets })
    .withHubProtocol(new LineClientProtocol())
    .configureLogging(signalR.LogLevel.None)
    .build()
  t.teardown(() => connection.stop())
  await connection.start()
  return connection
}

function contract (t: Test, makeBus: (t: Test) => Promise<Bus>): void {
  t.test('servers that both serve the protocol exchange its bytes', async (t) => {
    const bus = await makeBus(t)
    const { sent } = await firstSend(bus)
    const linesA = new LineProtocol()
    const linesB = new LineProtocol()
    const a = await start(t, bus, ['json', 'messagepack', linesA])
    const b = await start(t, bus, ['json', linesB])
    const sender = await linesClient(t, a)
    const remote = [await linesClient(t, b), await linesClient(t, b), await connect(t, b)]
    const received = remote.map((c) => nextMessage(c, 'msg'))
    await sender.invoke('Shout', 'hello')
    const got = await within(Promise.all(received), 'the broadcast on the other server')
    // The lines encoder is plain JSON.stringify, which writes bytes as an object of indexes.
    t.same(got[0], ['hello', { 0: 7, 1: 8 }], 'a custom-protocol client on the other server')
    t.same(got[1], ['hello', { 0: 7, 1: 8 }])
    t.same(got[2], ['hello', 'Bwg='], 'the JSON client: bytes as base64')
    t.equal(linesA.writes, 1, 'the publisher wrote the message once for its protocol')
    t.equal(linesB.writes, 0, 'the receiver used the bytes from the envelope')
    const send = await within(sent, 'the envelope')
    t.equal(send.length, 5, 'the envelope carries a map of further encodings')
    t.same(Object.keys(send[4] as object), ['lines'])
    t.equal(Buffer.from((send[4] as Record<string, Uint8Array>).lines!).toString(), '[1,null,"msg",["hello",{"0":7,"1":8}],[]]\n', 'the lines record')
  })

  t.test('a server whose peers do not know the protocol writes it from the MessagePack form, once', async (t) => {
    const bus = await makeBus(t)
    const { sent } = await firstSend(bus)
    const lines = new LineProtocol()
    const a = await start(t, bus, ['json', 'messagepack'])
    const b = await start(t, bus, ['json', lines])
    const sender = await connect(t, a)
    const remote = [await linesClient(t, b), await linesClient(t, b)]
    const received = remote.map((c) => nextMessage(c, 'msg'))
    await sender.invoke('Shout', 'hi')
    const got = await within(Promise.all(received), 'the broadcast on the other server')
    // Still bytes when the lines encoder met them (a Buffer, which JSON.stringify writes
    // as { type, data }, not JSON's base64 string): read back from the MessagePack form.
    t.same(got, [['hi', { type: 'Buffer', data: [7, 8] }], ['hi', { type: 'Buffer', data: [7, 8] }]])
    t.equal(lines.writes, 1, 'written once for both clients')
    t.equal((await within(sent, 'the envelope')).length, 4, 'the publisher sent the two portable encodings only')
  })

  t.test('an outside publisher\'s send is written for the protocol; one whose MessagePack form is broken is refused', async (t) => {
    const bus = await makeBus(t)
    const lines = new LineProtocol()
    const url = await start(t, bus, ['json', lines])
    const client = await linesClient(t, url)
    const got: unknown[][] = []
    client.on('Msg', (...args: unknown[]) => { got.push(args) })
    const broken = pack(newOrigin().bytes, [SEND, { kind: 'all', exclude: null }, Buffer.from('{}\u001e'), Buffer.from([3, 0x93, 0xc1, 0xc1])])
    await bus.publish(broken)
    const next = nextMessage(client, 'Msg')
    await bus.publish(externalSendAllEnvelope('after'))
    t.same(await within(next, 'the valid send'), ['after'], 'the server is still up and delivers the next send')
    t.same(got, [['after']], 'nothing of the broken one reached the client')
    t.equal(lines.writes, 1)
  })
}

t.test('memory bus', async (t) => {
  contract(t, async () => {
    const bus = new MemoryBus()
    return {
      backplane: () => memoryBackplane(bus),
      watch: (onPayload) => memoryBackplane(bus).subscribe('proto:all', onPayload),
      publish: async (payload) => { memoryBackplane(bus).publish('proto:all', payload) }
    }
  })
})

t.test('redis', async (t) => {
  const redis = await startRedis(t)
  contract(t, async (t) => {
    const clients: Redis[] = []
    t.teardown(() => { for (const c of clients) c.disconnect() })
    const client = (): Redis => {
      const c = new Redis({ port: redis.port, host: '127.0.0.1' })
      clients.push(c)
      return c
    }
    return {
      backplane: () => redisBackplane({ redis: client() }),
      watch: async (onPayload) => {
        const watcher = redisBackplane({ redis: client() })
        t.teardown(() => watcher.close())
        await watcher.subscribe(`${watcher.prefix}proto:all`, onPayload)
      },
      publish: async (payload) => { await client().publish('signalr:proto:all', payload) }
    }
  })
})
