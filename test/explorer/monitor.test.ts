/**
 * The monitor hub, through official Node clients: counts per hub, transport,
 * protocol, group and user, traffic totals, pushed snapshots, closing a
 * connection, and the "this server only" flag with a backplane.
 */
import t from 'tap'
import { MessagePackHubProtocol } from '@microsoft/signalr-protocol-msgpack'
import { memoryBackplane, MemoryBus } from '../../lib/index.js'
import type { MonitorSnapshot } from '../../lib/explorer/monitor.js'
import { chat } from '../../example-app/hubs/chat.js'
import { kinds } from '../fixtures/explorer-hub.js'
import { startApp } from '../helpers/app.js'
import { closed, connect, nextMessage, signalR } from '../helpers/clients.js'
import { handshakeRequest, negotiateRaw } from '../helpers/raw.js'

const options = {
  explorer: { path: '/signalr' },
  getUserId: (request: { query: unknown }) => (request.query as { user?: string }).user
}

t.test('snapshots count connections, groups, users and traffic of this server', async (t) => {
  const { baseUrl } = await startApp(t, (app) => {
    app.mapHub('/chathub', chat)
    app.mapHub('/kinds', kinds)
  }, options)
  const monitor = await connect(t, `${baseUrl}/signalr/monitor`)

  const ada1 = await connect(t, `${baseUrl}/chathub?user=ada`)
  const ada2 = await connect(t, `${baseUrl}/chathub?user=ada`)
  const bob = new signalR.HubConnectionBuilder()
    .withUrl(`${baseUrl}/kinds?user=bob`, { transport: signalR.HttpTransportType.LongPolling })
    .withHubProtocol(new MessagePackHubProtocol())
    .configureLogging(signalR.LogLevel.None)
    .build()
  t.teardown(() => bob.stop())
  await bob.start()

  await ada1.invoke('SendMessage', 'ada', 'hello')
  await t.rejects(ada1.invoke('SendMessage', 'ada', '  '), /Message must not be empty/)
  await t.rejects(bob.invoke('Fail'), /always fails/)
  await bob.invoke('Scalars', 'ab', 1, true, 'red')

  const snapshot = await monitor.invoke('GetSnapshot') as MonitorSnapshot
  t.equal(snapshot.scaled, false)
  t.equal(snapshot.totalConnections, 3, 'the monitor\'s own connection is not counted')
  const chatHub = snapshot.hubs.find((h) => h.name === 'chat')!
  const kindsHub = snapshot.hubs.find((h) => h.name === 'kinds')!
  t.same(snapshot.hubs.map((h) => h.name).sort(), ['chat', 'kinds'])
  t.equal(chatHub.connections, 2)
  t.same(chatHub.transports, { WebSockets: 2 })
  t.same(chatHub.protocols, { json: 2 })
  t.same(chatHub.groups, [['SignalR Users', 2]])
  t.same(chatHub.users, [['ada', 2]])
  t.same(chatHub.totals, { invocations: 2, errors: 1, slowClientCloses: 0 })
  t.same(kindsHub.transports, { LongPolling: 1 })
  t.same(kindsHub.protocols, { messagepack: 1 })
  t.same(kindsHub.users, [['bob', 1]])
  t.same(kindsHub.totals, { invocations: 2, errors: 1, slowClientCloses: 0 })

  const listed = snapshot.connections.find((c) => c.id === bob.connectionId)!
  t.match(listed, { hub: 'kinds', user: 'bob', transport: 'LongPolling', protocol: 'messagepack', groups: [] })
  t.ok(Math.abs(listed.connectedAt - Date.now()) < 60_000, 'connectedAt is a time')

  // Snapshots are pushed while a monitor is connected.
  const [pushed] = await nextMessage(monitor, 'Snapshot') as [MonitorSnapshot]
  t.equal(pushed.totalConnections, 3)

  // Closing one from the monitor: the client sees a server close, the count drops.
  const ended = closed(ada2)
  const id = ada2.connectionId!
  t.equal(await monitor.invoke('CloseConnection', id), true)
  t.equal(await ended, undefined)
  t.equal(await monitor.invoke('CloseConnection', id), false, 'already gone')
  t.equal(await monitor.invoke('CloseConnection', monitor.connectionId), false, 'the monitor does not close its own connections')
  const after = await monitor.invoke('GetSnapshot') as MonitorSnapshot
  t.equal(after.totalConnections, 2)
  t.same(after.hubs.find((h) => h.name === 'chat')!.groups, [['SignalR Users', 1]])
  await ada1.stop()
})

t.test('a long-polling client that stops polling is counted as a slow-client close', async (t) => {
  const { app, baseUrl } = await startApp(t, (app) => {
    app.mapHub('/chathub', chat, { maximumSendBufferSize: 100 })
  }, options)
  const monitor = await connect(t, `${baseUrl}/signalr/monitor`)
  const { body } = await negotiateRaw(`${baseUrl}/chathub`)
  const url = `${baseUrl}/chathub?id=${String(body.connectionToken)}`
  t.equal((await fetch(url)).status, 200, 'the first poll answers at once')
  t.equal((await fetch(url, { method: 'POST', body: handshakeRequest() })).status, 200)
  // The client never polls again: what the server sends it waits in its queue.
  const chatContext = app.signalr.hubContext(chat)
  // Past 100 bytes waiting, the next send closes it; a few sends are enough.
  let snapshot = await monitor.invoke('GetSnapshot') as MonitorSnapshot
  t.equal(snapshot.totalConnections, 1)
  for (let i = 0; i < 5 && snapshot.totalConnections > 0; i++) {
    await chatContext.clients.all.send('ReceiveMessage', 'server', 'x'.repeat(200))
    snapshot = await monitor.invoke('GetSnapshot') as MonitorSnapshot
  }
  t.same(snapshot.hubs[0]!.totals.slowClientCloses, 1)
  t.equal(snapshot.totalConnections, 0)
})

t.test('with a backplane the snapshot says it shows this server only', async (t) => {
  const bus = new MemoryBus()
  const a = await startApp(t, (app) => { app.mapHub('/chathub', chat) }, { ...options, backplane: memoryBackplane(bus) })
  const b = await startApp(t, (app) => { app.mapHub('/chathub', chat) }, { ...options, backplane: memoryBackplane(bus) })
  await connect(t, `${b.baseUrl}/chathub`)
  const monitorA = await connect(t, `${a.baseUrl}/signalr/monitor`)
  const monitorB = await connect(t, `${b.baseUrl}/signalr/monitor`)
  const [snapshotA, snapshotB] = await Promise.all([monitorA.invoke('GetSnapshot'), monitorB.invoke('GetSnapshot')]) as MonitorSnapshot[]
  t.equal(snapshotA!.scaled, true)
  t.equal(snapshotA!.totalConnections, 0, 'server A does not list B\'s connection')
  t.equal(snapshotB!.totalConnections, 1)
  // Each monitor gets its own server's pushes, never the other's.
  const [pushedA] = await nextMessage(monitorA, 'Snapshot') as [MonitorSnapshot]
  t.equal(pushedA.totalConnections, 0)
})
