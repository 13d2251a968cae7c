import { once } from 'node:events'
import websocket from '@fastify/websocket'
import Fastify, { type FastifyInstance } from 'fastify'
import t, { type Test } from 'tap'
import WebSocket from 'ws'
import { z } from 'zod'
import signalr, { defineHub, type MapHubOptions } from '../../lib/index.js'
import { invocation, rawConnect, RS } from '../helpers/raw.js'

/**
 * A hub's WebSocket limits and the application's own WebSocket routes live
 * side by side: each keeps what it was configured with.
 */
const hub = defineHub({
  methods: {
    Length: { args: [z.string()], handler: (_hub, s) => s.length }
  }
})

/** An app with a user WebSocket route at /echo next to a hub at /hub. */
async function start (t: Test, userMaxPayload: number | undefined, hubOptions: MapHubOptions): Promise<{ app: FastifyInstance, url: string }> {
  const app = Fastify({ forceCloseConnections: true })
  t.teardown(() => app.close())
  if (userMaxPayload !== undefined) await app.register(websocket, { options: { maxPayload: userMaxPayload } })
  await app.register(signalr)
  app.mapHub('/hub', hub, hubOptions)
  app.get('/echo', { websocket: true }, (socket) => {
    socket.on('message', (data: Buffer) => { socket.send(String(data.length)) })
  })
  await app.listen({ port: 0, host: '127.0.0.1' })
  return { app, url: `ws://127.0.0.1:${(app.server.address() as { port: number }).port}` }
}

/** What the user route answers to a message of `size` bytes: its length, or the close code. */
async function echo (t: Test, url: string, size: number): Promise<string | number> {
  const ws = new WebSocket(`${url}/echo`)
  t.teardown(() => { ws.terminate() })
  ws.on('error', () => {})
  await once(ws, 'open')
  ws.send('x'.repeat(size))
  return await new Promise((resolve) => {
    ws.once('message', (data: Buffer) => { resolve(data.toString()) })
    ws.once('close', (code: number) => { resolve(code) })
  })
}

/** What the hub answers to an invocation with a `size`-character argument: the length, or the close code. */
async function invoke (t: Test, url: string, size: number): Promise<unknown> {
  const client = await rawConnect(t, `${url}/hub`, { handshake: true, ignorePings: true })
  client.send(invocation('Length', ['y'.repeat(size)], '1'))
  return await Promise.race([client.next().then((m) => m.result), client.closed.then((c) => c.code)])
}

t.test('a user route with a small maxPayload keeps it next to a hub with large messages', async (t) => {
  const { app, url } = await start(t, 1000, { maximumReceiveMessageSize: 512 * 1024 })
  t.equal(await echo(t, url, 900), '900', 'the user route takes a message under its limit')
  t.equal(await echo(t, url, 2000), 1009, 'and refuses one over it, as configured (Message Too Big)')
  t.equal(await invoke(t, url, 300 * 1024), 300 * 1024, 'the hub takes a 300 KiB message, within its own limit')
  t.equal((app as unknown as { websocketServer: { options: { maxPayload: number } } }).websocketServer.options.maxPayload, 1000,
    'the shared ws server\'s options are untouched')
})

t.test('a user route with a large maxPayload keeps it next to a hub with the default limit', async (t) => {
  const { url } = await start(t, 8 * 1024 * 1024, {})
  const big = 2 * 1024 * 1024
  t.equal(await echo(t, url, big), String(big), 'the user route takes 2 MiB')
  // The default 32 KiB messages allow 1 MiB frames: the hub's own ws server refuses a 2 MiB frame.
  t.equal(await invoke(t, url, big), 1009, 'the hub refuses the same frame')
  t.equal(await invoke(t, url, 1000), 1000, 'and serves the next client as usual')
})

t.test('when the plugin registers @fastify/websocket, user routes get ws\'s defaults', async (t) => {
  const { app, url } = await start(t, undefined, { maximumReceiveMessageSize: 1024 })
  const options = (app as unknown as { websocketServer: { options: { maxPayload: number, skipUTF8Validation: boolean } } }).websocketServer.options
  t.equal(options.maxPayload, 100 * 1024 * 1024, 'ws\'s default maxPayload')
  t.equal(options.skipUTF8Validation, false, 'and ws checks UTF-8 for them, as by default')
  t.equal(await echo(t, url, 3 * 1024 * 1024), String(3 * 1024 * 1024), 'a 3 MiB message on the user route')
  t.equal(await invoke(t, url, 3 * 1024 * 1024), 1009, 'refused by the hub (1 MiB frames)')
})

t.test('a message split into records within one frame: the hub limit counts per message, the frame may carry several', async (t) => {
  const { url } = await start(t, 1000, { maximumReceiveMessageSize: 4096 })
  const client = await rawConnect(t, `${url}/hub`, { handshake: true, ignorePings: true })
  // Three 3 KiB messages in one 9 KiB frame: over the user route's 1000 bytes, within the hub's frame limit.
  const one = (id: string): string => JSON.stringify(invocation('Length', ['z'.repeat(3000)], id)) + RS
  client.sendText(one('a') + one('b') + one('c'))
  t.same([(await client.next()).result, (await client.next()).result, (await client.next()).result], [3000, 3000, 3000])
})
