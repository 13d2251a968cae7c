// Graceful shutdown of one server in a Redis cluster, behind a load balancer:
// its clients get Close with allowReconnect and reconnect to another server;
// the clients of the other servers notice nothing.
import { request } from 'node:http'
import { connect as netConnect, createServer, type Socket } from 'node:net'
import t, { type Test } from 'tap'
import { HUB_PATH } from '../fixtures/contract-hub.js'
import { buildCellClient } from '../helpers/matrix.js'
import { rawConnect } from '../helpers/raw.js'
import { startRedis } from '../helpers/redis.js'
import { spawnServers } from '../helpers/servers.js'
import {
  connectPeer, expectDelivery, LP_MSGPACK, SSE_JSON, within, WS_JSON, type ClusterServer, type Peer, type Who
} from './contract.js'

interface Proxy {
  readonly port: number
  /** Connections handed to each backend. */
  readonly forwarded: number[]
  /** Connection attempts to a backend that refused, each followed by the next backend. */
  readonly skipped: number
}

/**
 * A TCP round-robin balancer on loopback, like the one in front of a real
 * cluster without sticky sessions: each new connection goes to the next
 * backend, and a backend that refuses the connection is skipped.
 */
async function roundRobinProxy (t: Test, ports: readonly number[]): Promise<Proxy> {
  let next = 0
  let skipped = 0
  const forwarded = ports.map(() => 0)
  const open = new Set<Socket>()
  const track = (socket: Socket): void => {
    open.add(socket)
    socket.on('close', () => { open.delete(socket) })
    // The peer's close follows; an error here only means the other side went away.
    socket.on('error', () => {})
  }
  const forward = (client: Socket, attempt: number): void => {
    if (attempt >= ports.length || client.destroyed) {
      client.destroy()
      return
    }
    const index = next++ % ports.length
    const upstream = netConnect({ port: ports[index]!, host: '127.0.0.1' })
    const refused = (): void => {
      skipped++
      upstream.destroy()
      forward(client, attempt + 1)
    }
    upstream.once('error', refused)
    upstream.once('connect', () => {
      upstream.off('error', refused)
      track(upstream)
      forwarded[index]!++
      upstream.on('close', () => { client.destroy() })
      client.on('close', () => { upstream.destroy() })
      client.pipe(upstream)
      upstream.pipe(client)
    })
  }
  const server = createServer((client) => {
    track(client)
    forward(client, 0)
  })
  await new Promise<void>((resolve) => { server.listen(0, '127.0.0.1', resolve) })
  t.teardown(() => new Promise<void>((resolve) => {
    for (const socket of open) socket.destroy()
    server.close(() => { resolve() })
  }))
  return {
    port: (server.address() as { port: number }).port,
    forwarded,
    get skipped () { return skipped }
  }
}

/** A negotiate over a fresh TCP connection (no keep-alive), so the balancer picks again. */
function negotiateFresh (port: number): Promise<number> {
  return new Promise((resolve, reject) => {
    const req = request({ host: '127.0.0.1', port, method: 'POST', path: `${HUB_PATH}/negotiate?negotiateVersion=1`, agent: false }, (res) => {
      res.resume()
      res.on('end', () => { resolve(res.statusCode ?? 0) })
    })
    req.on('error', reject)
    req.end()
  })
}

t.test('one server shuts down gracefully; its clients move, the others are undisturbed', async (t) => {
  const redis = await startRedis(t)
  const children = await spawnServers(t, redis.port, ['g0', 'g1', 'g2'])
  const servers: ClusterServer[] = children
  const proxy = await roundRobinProxy(t, children.map((c) => c.port))

  // Through the balancer: negotiate and the WebSocket may land on different servers.
  const mover = buildCellClient(`http://127.0.0.1:${proxy.port}${HUB_PATH}`, WS_JSON, { automaticReconnect: [0, 100, 200] })
  const moverGot: unknown[] = []
  mover.on('Msg', (m: unknown) => { moverGot.push(m) })
  t.teardown(() => mover.stop())
  await within(mover.start(), 'the client behind the balancer to start')
  // Round robin gives the negotiate request and the WebSocket two different servers:
  // the shared connectionTokenSecret is what lets the official client connect at all.
  t.same([...proxy.forwarded].sort(), [0, 1, 1], 'negotiate and the WebSocket went to different servers')
  const before = await mover.invoke('Who') as Who
  const doomed = servers.findIndex((s) => s.name === before.server)
  t.ok(doomed >= 0, `the client behind the balancer lives on ${before.server}`)
  const survivors = [0, 1, 2].filter((i) => i !== doomed)

  // Direct clients of the servers that stay, on other transports (SSE and long polling need sticky sessions).
  const stays: Peer[] = [
    await connectPeer(t, servers, { name: 'stay-sse', server: survivors[0]!, cell: SSE_JSON }),
    await connectPeer(t, servers, { name: 'stay-lp', server: survivors[1]!, cell: LP_MSGPACK }),
    await connectPeer(t, servers, { name: 'stay-ws', server: survivors[1]!, cell: WS_JSON })
  ]
  const closes: string[] = []
  for (const p of stays) p.conn.onclose(() => { closes.push(p.name) })
  // A raw client on the doomed server sees the exact Close record; official
  // clients without automatic reconnect on the other transports just stop, without error.
  const raw = await rawConnect(t, `${servers[doomed]!.wsUrl}${HUB_PATH}`, { handshake: true, ignorePings: true })
  const goners = [
    await connectPeer(t, servers, { name: 'goner-sse', server: doomed, cell: SSE_JSON }),
    await connectPeer(t, servers, { name: 'goner-lp', server: doomed, cell: LP_MSGPACK })
  ]
  const gonersClosed = Promise.all(goners.map((p) => new Promise<Error | undefined>((resolve) => { p.conn.onclose(resolve) })))

  const reconnecting = new Promise<Error | undefined>((resolve) => { mover.onreconnecting(resolve) })
  const reconnected = new Promise<string | undefined>((resolve) => { mover.onreconnected(resolve) })
  const moverClosed: Array<Error | undefined> = []
  mover.onclose((err) => { moverClosed.push(err) })

  children[doomed]!.child.kill('SIGTERM')

  t.equal(await within(raw.nextText(), 'the Close record'), '{"type":7,"allowReconnect":true}', 'its clients get Close with allowReconnect')
  t.equal((await within(raw.closed, 'the raw socket to close')).code, 1000)
  t.same(await within(gonersClosed, 'the SSE and long-polling clients to close'), [undefined, undefined],
    'SSE and long-polling clients of the stopped server are closed without error')
  await within(reconnecting, 'the official client to start reconnecting')
  t.pass('the official client with automatic reconnect starts reconnecting')
  const newId = await within(reconnected, 'the official client to reconnect')
  t.type(newId, 'string')
  const after = await mover.invoke('Who') as Who
  t.not(after.server, before.server, `it reconnected to another server (${after.server})`)
  t.equal(after.connectionId, newId)
  t.same(await within(children[doomed]!.exited, 'the server process to exit'), { code: 0, signal: null },
    `the stopped server exited on its own${children[doomed]!.stderr() === '' ? '' : `; stderr: ${children[doomed]!.stderr()}`}`)
  t.same(moverClosed, [], 'the moved client never closed')

  // The other servers' clients: same connections, still connected, messages flow both ways.
  t.same(closes, [], 'no client of another server was closed')
  for (const p of stays) {
    t.equal(p.conn.state, 'Connected')
    t.equal((await p.conn.invoke('Who') as Who).connectionId, p.id, `${p.name} keeps its connection`)
  }
  const moverServer = servers.findIndex((s) => s.name === after.server)
  const moverPeer: Peer = { name: 'mover', server: moverServer, conn: mover, id: after.connectionId, cell: WS_JSON, got: moverGot }
  const everyone = [...stays, moverPeer]
  await expectDelivery(t, servers, everyone, 'all from the moved client', 'after-move', everyone, moverServer,
    () => mover.invoke('Send', { kind: 'all' }, 'after-move'))
  await expectDelivery(t, servers, everyone, 'client(id) to the moved client', 'to-mover', [moverPeer], stays[0]!.server,
    () => stays[0]!.conn.invoke('Send', { kind: 'client', id: after.connectionId }, 'to-mover'))

  // With the server gone, the balancer skips it: every new connection still lands.
  const skippedBefore = proxy.skipped
  const statuses = []
  for (let i = 0; i < 3; i++) statuses.push(await negotiateFresh(proxy.port))
  t.same(statuses, [200, 200, 200], 'negotiate through the balancer succeeds')
  t.ok(proxy.skipped > skippedBefore, 'the stopped server was skipped')
})
