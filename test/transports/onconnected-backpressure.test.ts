import t from 'tap'
import { z } from 'zod'
import type { HubConnection } from '../../lib/connection/connection.js'
import { defineHub, type Hub } from '../../lib/index.js'
import { startApp } from '../helpers/app.js'
import { deferred } from '../helpers/deferred.js'
import { invocation, rawConnect, record } from '../helpers/raw.js'

/**
 * While a slow onConnected runs nothing is dispatched, and the transport is
 * paused: a client that keeps sending meanwhile fills its own socket buffers,
 * not the server's inbox. White-box: the server connection is read from the
 * `hub` object of onConnected.
 */
const MESSAGES = 2000
/** About 4 KB per message: 8 MB in all, far more than the bound below. */
const PAYLOAD = 'p'.repeat(4000)
/** What the server may hold unread while paused: what the socket had already read, with room to spare. */
const BOUND = 1024 * 1024

function connectionOf (hub: Hub): HubConnection {
  return (hub as unknown as { connection: HubConnection }).connection
}

t.test('WebSockets: the inbox stays bounded while a slow onConnected runs, then every message runs in order', async (t) => {
  const release = deferred()
  const started = deferred<HubConnection>()
  const received: number[] = []
  const hub = defineHub({
    methods: {
      Push: { args: [z.number(), z.string()], handler (_hub, n) { received.push(n) } },
      Received: { args: [], handler: () => received.length }
    },
    async onConnected (hub) {
      started.resolve(connectionOf(hub))
      await release.promise
    }
  })
  const { wsUrl } = await startApp(t, (app) => { app.mapHub('/hub', hub) })
  const client = await rawConnect(t, `${wsUrl}/hub`, { handshake: true })
  const connection = await started.promise

  for (let i = 0; i < MESSAGES; i++) client.send(invocation('Push', [i, PAYLOAD]))
  const sent = MESSAGES * Buffer.byteLength(record(invocation('Push', [0, PAYLOAD])))

  // Give the server every chance to read: until the client has handed all it
  // could to its socket, then a few more turns. Nothing here asserts on time.
  let largest = 0
  for (let turn = 0; turn < 200; turn++) {
    largest = Math.max(largest, connection.bufferedInboundBytes)
    if (client.ws.bufferedAmount === 0 && turn >= 20) break
    await new Promise((resolve) => setTimeout(resolve, 10))
  }
  t.equal(received.length, 0, 'nothing is dispatched before onConnected has finished')
  t.ok(largest <= BOUND, `the server holds at most ${BOUND} bytes unread (${largest} of ${sent} sent)`)

  release.resolve()
  client.send(invocation('Received', [], 'last'))
  let answer = await client.next()
  while (answer.type !== 3) answer = await client.next()
  t.same(answer, { type: 3, invocationId: 'last', result: MESSAGES }, 'every message is taken')
  t.same(received, Array.from({ length: MESSAGES }, (_, i) => i), 'in the order they were sent')
})
