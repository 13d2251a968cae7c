// @fastify/websocket's app.injectWS on a hub path: the upgrade has no network
// socket, so the hub leaves it to @fastify/websocket's own ws server and
// serves the WebSocket it hands over, with or without a negotiated token.
import t from 'tap'
import type { WebSocket } from 'ws'
import { z } from 'zod'
import { defineHub } from '../../lib/index.js'
import { unlistenedApp } from '../helpers/app.js'
import { handshakeRequest, invocation, record, RS } from '../helpers/raw.js'

const hub = defineHub({
  methods: {
    Add: { args: [z.number(), z.number()], handler: (_hub, a, b) => a + b },
    WhoAmI: { args: [], handler: (hub) => ({ id: hub.connectionId, transport: hub.transport }) }
  }
})

/** The records the server writes to `ws`, parsed, as they arrive. */
function records (ws: WebSocket): () => Promise<unknown> {
  const queue: unknown[] = []
  const waiting: Array<(value: unknown) => void> = []
  ws.on('message', (data: Buffer) => {
    for (const text of data.toString('utf8').split(RS).filter((s) => s !== '')) {
      const value = JSON.parse(text) as unknown
      const next = waiting.shift()
      if (next !== undefined) next(value)
      else queue.push(value)
    }
  })
  return () => queue.length > 0 ? Promise.resolve(queue.shift()) : new Promise((resolve) => { waiting.push(resolve) })
}

t.test('injectWS on a hub: handshake, invocations, and a negotiated token', async (t) => {
  const app = await unlistenedApp(t, (app) => { app.mapHub('/hub', hub) })
  await app.ready()

  const direct = await app.injectWS('/hub')
  t.teardown(() => { direct.terminate() })
  const next = records(direct)
  direct.send(handshakeRequest())
  t.same(await next(), {}, 'the handshake is answered (skipNegotiation: no token)')
  direct.send(record(invocation('Add', [2, 3], '1')))
  t.same(await next(), { type: 3, invocationId: '1', result: 5 })

  const negotiated = await app.inject({ method: 'POST', url: '/hub/negotiate?negotiateVersion=1' })
  const { connectionId, connectionToken } = negotiated.json() as { connectionId: string, connectionToken: string }
  const byToken = await app.injectWS(`/hub?id=${connectionToken}`)
  t.teardown(() => { byToken.terminate() })
  const nextByToken = records(byToken)
  byToken.send(handshakeRequest())
  t.same(await nextByToken(), {})
  byToken.send(record(invocation('WhoAmI', [], '1')))
  t.same(await nextByToken(), { type: 3, invocationId: '1', result: { id: connectionId, transport: 'WebSockets' } },
    'the negotiated connection is the one opened')

  await t.rejects(app.injectWS(`/hub?id=${connectionToken}`), /Unexpected server response: 409/, 'its token cannot open a second one')
  await t.rejects(app.injectWS('/hub?id=unknown'), /Unexpected server response: 404/)
})
