import { MessagePackHubProtocol } from '@microsoft/signalr-protocol-msgpack'
import Fastify from 'fastify'
import t, { type Test } from 'tap'
import { z } from 'zod'
import signalr, { defineHub } from '../../lib/index.js'
import { startApp } from '../helpers/app.js'
import { connect, nextMessage, signalR } from '../helpers/clients.js'
import { LineClientProtocol, LineProtocol } from '../helpers/line-protocol.js'

const notes: string[] = []

const hub = defineHub({
  client: { msg: [z.string()], answer: { args: [z.number()], returns: z.number() } },
  methods: {
    Add: { args: [z.number(), z.number()], returns: z.number(), handler: (_h, a, b) => a + b },
    Bytes: { args: [], handler: () => new Uint8Array([1, 2, 3]) },
    Note: { args: [z.string()], handler: (_h, s) => { notes.push(s) } },
    Shout: { args: [z.string()], handler: (h, s) => h.clients.all.send('msg', s) },
    Fail: { args: [], handler: () => { throw new Error('no') } },
    Ask: { args: [z.number()], handler: (h, n) => h.clients.caller.invoke('answer', n) },
    Count: {
      args: [z.number()],
      stream: true,
      async * handler (hub, n) { for (let i = 0; i < n && !hub.signal.aborted; i++) yield i }
    }
  }
})

async function streamAll (connection: signalR.HubConnection, method: string, ...args: unknown[]): Promise<unknown[]> {
  const items: unknown[] = []
  await new Promise<void>((resolve, reject) => {
    connection.stream(method, ...args).subscribe({ next: (i) => { items.push(i) }, complete: resolve, error: reject })
  })
  return items
}

/** Invoke, send, a failure, a client result and a stream, over whatever `connection` speaks. */
async function exercise (t: Test, connection: signalR.HubConnection): Promise<void> {
  t.equal(await connection.invoke('Add', 2, 3), 5, 'invoke')
  notes.length = 0
  await connection.send('Note', 'sent')
  // Invocations run in order per connection: once this answers, the send ran.
  await connection.invoke('Add', 0, 0)
  t.same(notes, ['sent'], 'send (no completion)')
  await t.rejects(connection.invoke('Fail'), /An unexpected error occurred invoking 'Fail' on the server/, 'a failure')
  connection.on('answer', (n: number) => n * 2)
  t.equal(await connection.invoke('Ask', 21), 42, 'a client result')
  t.same(await streamAll(connection, 'Count', 4), [0, 1, 2, 3], 'a stream')
}

t.test('a custom protocol over the in-memory transport', async (t) => {
  const lines = new LineProtocol()
  const app = Fastify()
  t.teardown(() => app.close())
  await app.register(signalr, { protocols: ['json', lines] })
  app.mapHub('/hub', hub)
  const connection = await app.signalr.inject('/hub', { protocol: new LineClientProtocol() })
  t.teardown(() => connection.stop())
  await exercise(t, connection)
  t.ok(lines.writes > 0, 'the server wrote with the custom protocol')
})

t.test('a custom protocol over WebSockets and Server-Sent Events, with the official client', async (t) => {
  const { baseUrl } = await startApp(t, (app) => { app.mapHub('/hub', hub) }, { protocols: ['json', 'messagepack', new LineProtocol()] })
  for (const transport of [signalR.HttpTransportType.WebSockets, signalR.HttpTransportType.ServerSentEvents]) {
    const connection = await connect(t, `${baseUrl}/hub`)
    await connection.stop()
    const lines = new signalR.HubConnectionBuilder()
      .withUrl(`${baseUrl}/hub`, { transport })
      .withHubProtocol(new LineClientProtocol())
      .configureLogging(signalR.LogLevel.None)
      .build()
    t.teardown(() => lines.stop())
    await lines.start()
    t.equal(lines.connectionId !== null, true)
    await t.test(signalR.HttpTransportType[transport], (t) => exercise(t, lines))
  }
})

t.test('a broadcast reaches JSON, MessagePack and custom-protocol clients, written once per protocol', async (t) => {
  const lines = new LineProtocol()
  const { baseUrl } = await startApp(t, (app) => { app.mapHub('/hub', hub) }, { protocols: ['json', 'messagepack', lines] })
  const url = `${baseUrl}/hub`
  const build = (protocol?: signalR.IHubProtocol): signalR.HubConnection => {
    const builder = new signalR.HubConnectionBuilder()
      .withUrl(url, { transport: signalR.HttpTransportType.WebSockets })
      .configureLogging(signalR.LogLevel.None)
    if (protocol !== undefined) builder.withHubProtocol(protocol)
    return builder.build()
  }
  const clients = [build(), build(new MessagePackHubProtocol()), build(new LineClientProtocol()), build(new LineClientProtocol())]
  for (const client of clients) {
    t.teardown(() => client.stop())
    await client.start()
  }
  const received = clients.map((c) => nextMessage(c, 'msg'))
  const before = lines.writes
  await clients[2]!.invoke('Shout', 'to everyone')
  t.same(await Promise.all(received), [['to everyone'], ['to everyone'], ['to everyone'], ['to everyone']])
  t.equal(lines.writes - before, 1, 'one serialization of the invocation for the two custom-protocol clients')

  // Each protocol writes values its own way: this one with plain JSON.stringify, which makes bytes an object.
  t.same(await clients[1]!.invoke('Bytes'), new Uint8Array([1, 2, 3]), 'MessagePack keeps bytes')
  t.same(await clients[2]!.invoke('Bytes'), { 0: 1, 1: 2, 2: 3 }, 'the custom protocol writes what its encoder makes of them')
})
