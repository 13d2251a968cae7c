import { once } from 'node:events'
import t from 'tap'
import { z } from 'zod'
import type { WebSocket } from 'ws'
import { defineHub } from '../../lib/index.js'
import { serverSockets, startApp } from '../helpers/app.js'
import { collect } from '../helpers/clients.js'
import { connectCell } from '../helpers/matrix.js'
import { startTcpProxy } from '../helpers/tcp-proxy.js'
import { handshakeRequest, invocation, rawConnect } from '../helpers/raw.js'

const WS_JSON = { transport: 'WebSockets', protocol: 'json', name: 'WebSockets/json' } as const
const WS_MSGPACK = { transport: 'WebSockets', protocol: 'messagepack', name: 'WebSockets/messagepack' } as const

function makeHub () {
  const state = { connected: 0, disconnected: 0, pushed: [] as number[], cut: null as null | (() => void) }
  const hub = defineHub({
    methods: {
      Counter: {
        args: [z.number(), z.number()],
        stream: true,
        async * handler (hub, count, cutAt) {
          for (let i = 0; i < count && !hub.signal.aborted; i++) {
            if (i === cutAt) state.cut?.()
            yield i
            await new Promise((resolve) => setImmediate(resolve))
          }
        }
      },
      Push: { args: [z.number()], handler (_hub, n) { state.pushed.push(n) } },
      Pushed: { args: [], handler: () => state.pushed }
    },
    onConnected () { state.connected++ },
    onDisconnected () { state.disconnected++ }
  })
  return { hub, state }
}

/** Drops every server-side WebSocket abruptly, as a network blip would. */
function cutAll (sockets: Map<WebSocket, number>): void {
  for (const socket of sockets.keys()) socket.terminate()
}

/** Counts WebSocket upgrades the server accepts (a reconnect is a second one). */
function countUpgrades (app: unknown): { count: number } {
  const counter = { count: 0 }
  ;(app as { websocketServer: { on (e: string, f: () => void): void } }).websocketServer.on('connection', () => { counter.count++ })
  return counter
}

for (const cell of [WS_JSON, WS_MSGPACK]) {
  t.test(`${cell.name}: a stream cut mid-way loses and duplicates nothing`, async (t) => {
    const { hub, state } = makeHub()
    const { app, baseUrl } = await startApp(t, (app) => { app.mapHub('/hub', hub, { allowStatefulReconnects: true }) })
    const upgrades = countUpgrades(app)
    const sockets = serverSockets(app)
    const c = await connectCell(t, `${baseUrl}/hub`, cell, { statefulReconnect: true })
    let reconnects = 0
    c.onreconnected(() => { reconnects++ })
    state.cut = () => { cutAll(sockets) }
    const items: number[] = []
    await new Promise<void>((resolve, reject) => {
      c.stream('Counter', 200, 50).subscribe({ next: (v) => { items.push(v as number) }, complete: resolve, error: reject })
    })
    t.same(items, Array.from({ length: 200 }, (_, i) => i), 'every item exactly once, in order')
    t.equal(c.state, 'Connected')
    t.equal(reconnects, 0, 'no full reconnect: the same logical connection')
    t.equal(state.connected, 1, 'onConnected ran once')
    t.equal(state.disconnected, 0, 'onDisconnected did not run')
    t.equal(upgrades.count, 2, 'the WebSocket really was cut and reopened')
  })

  t.test(`${cell.name}: client messages sent around a cut arrive exactly once`, async (t) => {
    const { hub, state } = makeHub()
    const { app, baseUrl } = await startApp(t, (app) => { app.mapHub('/hub', hub, { allowStatefulReconnects: true }) })
    const upgrades = countUpgrades(app)
    const sockets = serverSockets(app)
    const c = await connectCell(t, `${baseUrl}/hub`, cell, { statefulReconnect: true })
    const sends: Array<Promise<void>> = []
    for (let i = 0; i < 100; i++) {
      if (i === 40) cutAll(sockets)
      sends.push(c.send('Push', i))
    }
    await Promise.all(sends)
    t.same(await c.invoke('Pushed'), Array.from({ length: 100 }, (_, i) => i))
    t.equal(state.connected, 1)
    t.equal(upgrades.count, 2, 'the WebSocket really was cut and reopened')
  })
}

t.test('without allowStatefulReconnects the server does not offer it', async (t) => {
  const { hub } = makeHub()
  const { baseUrl } = await startApp(t, (app) => { app.mapHub('/hub', hub) })
  const res = await fetch(`${baseUrl}/hub/negotiate?negotiateVersion=1&useStatefulReconnect=true`, { method: 'POST' })
  const body = await res.json() as Record<string, unknown>
  t.notOk('useStatefulReconnect' in body)
})

t.test('a dropped stateful connection that never comes back ends after the disconnect timeout', async (t) => {
  const { hub, state } = makeHub()
  let ended!: () => void
  const disconnected = new Promise<void>((resolve) => { ended = resolve })
  const { app, baseUrl } = await startApp(t, (app) => {
    app.mapHub('/hub', defineHub({ methods: {}, onDisconnected: (_h, err) => { t.ok(err, 'with an error'); ended() } }), {
      allowStatefulReconnects: true, disconnectTimeout: 100
    })
    app.mapHub('/other', hub)
  })
  const res = await fetch(`${baseUrl}/hub/negotiate?negotiateVersion=1&useStatefulReconnect=true`, { method: 'POST' })
  const { connectionToken, useStatefulReconnect } = await res.json() as { connectionToken: string, useStatefulReconnect: boolean }
  t.equal(useStatefulReconnect, true)
  const { default: WebSocket } = await import('ws')
  const ws = new WebSocket(`${baseUrl.replace('http', 'ws')}/hub?id=${connectionToken}`)
  await new Promise((resolve) => ws.once('open', resolve))
  ws.send('{"protocol":"json","version":2}\u001e')
  await new Promise((resolve) => ws.once('message', resolve))
  ws.terminate()
  await disconnected
  t.equal(state.connected, 0)
  void app
})

t.test('a new WebSocket takes over while the old one still looks open on the server (half-open TCP)', async (t) => {
  const state = { pushed: [] as number[], connected: 0, disconnected: 0 }
  const hub = defineHub({
    methods: {
      Push: {
        args: [z.number()],
        async handler (hub, n) {
          state.pushed.push(n)
          await hub.clients.caller.send('Echo', n)
        }
      },
      Pushed: { args: [], handler: () => state.pushed }
    },
    onConnected () { state.connected++ },
    onDisconnected () { state.disconnected++ }
  })
  const { app } = await startApp(t, (app) => { app.mapHub('/hub', hub, { allowStatefulReconnects: true }) })
  const serverSockets: WebSocket[] = []
  ;(app as unknown as { websocketServer: { on (e: string, f: (s: WebSocket) => void): void } })
    .websocketServer.on('connection', (socket) => { serverSockets.push(socket) })
  // The client reaches the server through a proxy that can fail on the client's side only.
  const proxy = await startTcpProxy(t, (app.server.address() as { port: number }).port)
  const c = await connectCell(t, `http://127.0.0.1:${proxy.port}/hub`, WS_JSON, { statefulReconnect: true })
  const echoes = collect(c, 'Echo')
  let closedWith: Error | undefined | null = null
  c.onclose((error) => { closedWith = error })

  const sends: Array<Promise<void>> = []
  for (let i = 0; i < 100; i++) {
    // The client sees its socket die; the server's end of it stays open and silent.
    if (i === 40) proxy.cutClientsOnly()
    sends.push(c.send('Push', i))
  }
  await Promise.all(sends)
  const all = Array.from({ length: 100 }, (_, i) => i)
  t.same(await c.invoke('Pushed'), all, 'every client message arrived exactly once, in order')
  t.same(echoes, all.map((i) => [i]), 'every server message arrived exactly once, in order')
  t.equal(closedWith, null, 'the client never gave up')
  t.equal(c.state, 'Connected')
  t.equal(serverSockets.length, 2, 'the client reconnected and its new WebSocket was accepted')
  t.equal(state.connected, 1, 'the same logical connection: onConnected ran once')
  t.equal(state.disconnected, 0, 'onDisconnected did not run')
  const old = serverSockets[0]!
  t.ok(old.readyState === old.CLOSING || old.readyState === old.CLOSED, 'the old WebSocket is being closed by the server')
  // Its peer never answers the close frame, so the server's close timeout ends it.
  if (old.readyState !== old.CLOSED) await once(old, 'close')
  t.equal(c.state, 'Connected', 'closing the old socket does not touch the connection')
  t.same(await c.invoke('Pushed'), all, 'and it still answers')
})

t.test('raw: a second WebSocket with the token of an open stateful connection takes over; the first is closed, nothing is lost or repeated', async (t) => {
  const hub = defineHub({ methods: { Echo: { args: [z.string()], handler: (_hub, text) => text } } })
  const { baseUrl, wsUrl } = await startApp(t, (app) => { app.mapHub('/hub', hub, { allowStatefulReconnects: true }) })
  const res = await fetch(`${baseUrl}/hub/negotiate?negotiateVersion=1&useStatefulReconnect=true`, { method: 'POST' })
  const { connectionToken } = await res.json() as { connectionToken: string }
  const url = `${wsUrl}/hub?id=${connectionToken}`
  const first = await rawConnect(t, url, { ignorePings: true })
  first.sendText(handshakeRequest('json', 2))
  t.equal(await first.nextText(), '{}')
  first.send(invocation('Echo', ['one'], '1'))
  t.same(await first.next(), { type: 3, invocationId: '1', result: 'one' })

  // The first socket is still open: the token's owner comes back on a second one anyway.
  const second = await rawConnect(t, url, { ignorePings: true })
  t.same(await second.next(), { type: 9, sequenceId: 1 }, 'accepted: the server says where its replay starts')
  t.same(await second.next(), { type: 3, invocationId: '1', result: 'one' }, 'and replays what was not acknowledged')
  t.equal((await first.closed).code, 1000, 'the first socket is closed by the server')

  // The client replays from its first message, which the server had already taken: it runs once only.
  second.send({ type: 9, sequenceId: 1 }, invocation('Echo', ['one'], '1'), invocation('Echo', ['two'], '2'))
  t.same(await second.next(), { type: 3, invocationId: '2', result: 'two' }, 'the replayed call is not run again')
  t.notOk(second.isClosed)
})
