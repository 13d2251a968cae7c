/**
 * Pins what WebSocketTransport assumes of the installed `ws`: frames written
 * straight to the network socket and frames ws writes itself keep their
 * order, and ws's close-frame event can be hooked. If a ws release changes
 * either, these tests fail rather than the wire silently changing.
 */
import { once } from 'node:events'
import { createServer, type Server } from 'node:http'
import { connect, type Socket } from 'node:net'
import type { Duplex } from 'node:stream'
import { setImmediate as turn } from 'node:timers/promises'
import t, { type Test } from 'tap'
import WebSocket, { WebSocketServer } from 'ws'
import { defineHub } from '../../lib/index.js'
import { hubServerOptions } from '../../lib/transports/websocket-upgrade.js'
import { answerClientCloseWithNormal, directSocket, WebSocketTransport } from '../../lib/transports/websockets.js'
import { startApp } from '../helpers/app.js'
import { rawConnect } from '../helpers/raw.js'

/** A bare HTTP server whose upgrades go to `wss`; each new server-side WebSocket and its network socket to `opened`. */
async function upgradeServer (t: Test, wss: WebSocketServer, opened: (ws: WebSocket, raw: Duplex) => void): Promise<number> {
  const server: Server = createServer()
  server.on('upgrade', (request, socket, head) => {
    wss.handleUpgrade(request, socket, head, (ws) => { opened(ws, socket) })
  })
  server.listen(0, '127.0.0.1')
  await once(server, 'listening')
  t.teardown(() => { server.close() })
  return (server.address() as { port: number }).port
}

/** A client on a plain TCP socket: every byte after the 101 response, as it arrived. */
async function rawClient (t: Test, port: number): Promise<{ socket: Socket, bytes: () => Buffer, ended: Promise<void> }> {
  const socket = connect(port, '127.0.0.1')
  t.teardown(() => { socket.destroy() })
  const chunks: Buffer[] = []
  socket.on('data', (chunk: Buffer) => { chunks.push(chunk) })
  const ended = once(socket, 'end').then(() => {})
  socket.write('GET / HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n' +
    'Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n')
  return {
    socket,
    ended,
    bytes () {
      const all = Buffer.concat(chunks)
      return all.subarray(all.indexOf('\r\n\r\n') + 4)
    }
  }
}

/**
 * Writes the same mix through `transport`: small and large records, text
 * and binary, several in one turn (coalesced), and ws's own frames (a ping)
 * in between; then closes.
 */
async function writeMix (transport: WebSocketTransport, ws: WebSocket): Promise<void> {
  transport.sendText('{"type":1,"target":"a"}\u001e')
  transport.sendText('{"type":1,"target":"b"}\u001e')
  transport.send(Buffer.from('{"type":1,"target":"c"}\u001e'))
  await turn()
  transport.send(Buffer.from('L'.repeat(40 * 1024) + '\u001e'))
  ws.ping(Buffer.from('between'))
  transport.sendText('{"type":6}\u001e')
  await turn()
  transport.sendText('x'.repeat(10 * 1024) + '\u001e')
  for (let i = 0; i < 50; i++) transport.sendText(`{"type":1,"target":"n${i}"}\u001e`)
  await turn()
  transport.setBinary(true)
  transport.send(Buffer.from([3, 0x95, 1, 2, 3]))
  transport.send(Buffer.from([3, 0x95, 4, 5, 6]))
  await turn()
  transport.close()
}

t.test('with the installed ws, hub connections write their frames directly', async (t) => {
  let writes: boolean | undefined
  let head: unknown
  const hub = defineHub({
    methods: {},
    onConnected (hub) {
      writes = ((hub as unknown as { connection: { transport: WebSocketTransport } }).connection.transport).writesDirectly
      const raw = hub.request.raw as unknown as Record<symbol, unknown>
      head = Object.getOwnPropertySymbols(raw).filter((symbol) => symbol.description === 'ws-head').map((symbol) => (raw[symbol] as Buffer).buffer.byteLength)
    }
  })
  const { wsUrl } = await startApp(t, (app) => { app.mapHub('/hub', hub) })
  await rawConnect(t, `${wsUrl}/hub`, { handshake: true, ignorePings: true })
  t.equal(writes, true, 'the direct path was found')
  // @fastify/websocket's upgrade head, a view of the request's read buffer, is not kept alive with hub.request.
  t.same(head, [0], 'found where the upgrade expects it, and released (no read buffer behind it)')
})

t.test('the direct path and the public one (ws.send) put the same bytes on the wire', async (t) => {
  const wss = new WebSocketServer(hubServerOptions(1024 * 1024))
  const sockets: Array<{ ws: WebSocket, raw: Duplex }> = []
  const port = await upgradeServer(t, wss, (ws, raw) => { sockets.push({ ws, raw }) })
  const direct = await rawClient(t, port)
  const fallback = await rawClient(t, port)
  while (sockets.length < 2) await turn()
  const viaSocket = new WebSocketTransport(sockets[0]!.ws, sockets[0]!.raw)
  const viaWs = new WebSocketTransport(sockets[1]!.ws, null)
  t.equal(viaSocket.writesDirectly, true)
  t.equal(viaWs.writesDirectly, false)
  await Promise.all([writeMix(viaSocket, sockets[0]!.ws), writeMix(viaWs, sockets[1]!.ws)])
  // The clients never answer the close frame: end their side, and the server ends its own.
  direct.socket.end()
  fallback.socket.end()
  await Promise.all([direct.ended, fallback.ended])
  const a = direct.bytes()
  const b = fallback.bytes()
  t.ok(a.length > 50 * 1024, 'everything arrived')
  t.ok(a.equals(b), 'byte for byte the same frames, in the same order')
  // The ping ws wrote itself sits between the large record and the next one, as called.
  const ping = a.indexOf(Buffer.concat([Buffer.from([0x89, 7]), Buffer.from('between')]))
  t.ok(ping > a.indexOf('LLLL') && ping < a.indexOf('{"type":6}'), 'ws\'s own frame keeps its place among ours')
})

t.test('no direct path when an extension was negotiated (ws then may hold frames back)', async (t) => {
  const wss = new WebSocketServer({ noServer: true, perMessageDeflate: true })
  let server: WebSocket | undefined
  let raw: Duplex | undefined
  const port = await upgradeServer(t, wss, (ws, socket) => { server = ws; raw = socket })
  const client = new WebSocket(`ws://127.0.0.1:${port}/`, { perMessageDeflate: true })
  t.teardown(() => { client.terminate() })
  await once(client, 'open')
  // `server` is set by the upgrade callback while this loop awaits.
  // eslint-disable-next-line no-unmodified-loop-condition
  while (server === undefined) await turn()
  t.not(server.extensions, '', 'permessage-deflate was negotiated')
  t.equal(directSocket(server, raw!), null)
  t.equal(new WebSocketTransport(server, raw!).writesDirectly, false)
})

t.test('ws\'s close-frame event is found, so a client close is answered with 1000', async (t) => {
  const wss = new WebSocketServer({ noServer: true })
  let server: WebSocket | undefined
  const port = await upgradeServer(t, wss, (ws) => { server = ws })
  const client = new WebSocket(`ws://127.0.0.1:${port}/`)
  t.teardown(() => { client.terminate() })
  await once(client, 'open')
  // `server` is set by the upgrade callback while this loop awaits.
  // eslint-disable-next-line no-unmodified-loop-condition
  while (server === undefined) await turn()
  t.equal(answerClientCloseWithNormal(server), true, 'the hook took with the installed ws')
  client.close(4000)
  const [code] = await once(client, 'close') as [number]
  t.equal(code, 1000, 'ws answered 1000, not the client\'s 4000')
})
