import websocket from '@fastify/websocket'
import Fastify, { type FastifyInstance } from 'fastify'
import t from 'tap'
import { z } from 'zod'
import signalr, { defineHub } from '../../lib/index.js'
import { startApp } from '../helpers/app.js'
import { buildClient, signalR } from '../helpers/clients.js'
import { upgradeStatus } from '../helpers/raw.js'

// A plugin registered without 'webSockets' leaves @fastify/websocket out
// (its hooks would run on every poll and POST); the HTTP transports, the
// application's hooks and the refusal of upgrades must not notice.

const echo = defineHub({ methods: { Echo: { args: [z.string()], handler: (_hub, s) => s } } })
const TOKEN = 'letmein'

/** The app's own authentication, on every request of the scope the hub is mapped in. */
function guarded (app: FastifyInstance): void {
  app.addHook('onRequest', async (request, reply) => {
    if (request.headers.authorization !== `Bearer ${TOKEN}` && (request.query as { access_token?: string }).access_token !== TOKEN) {
      await reply.code(401).send('no')
    }
  })
  app.mapHub('/hub', echo)
}

function client (url: string, transport: signalR.HttpTransportType, token = TOKEN): signalR.HubConnection {
  return new signalR.HubConnectionBuilder()
    .withUrl(url, { transport, accessTokenFactory: () => token })
    .configureLogging(signalR.LogLevel.None)
    .build()
}

t.test('transports without webSockets: long polling and SSE work, hooks run, upgrades are refused as before', async (t) => {
  const { baseUrl, wsUrl } = await startApp(t, guarded, { transports: ['longPolling', 'serverSentEvents'] })
  for (const transport of [signalR.HttpTransportType.LongPolling, signalR.HttpTransportType.ServerSentEvents]) {
    const c = client(`${baseUrl}/hub`, transport)
    t.teardown(() => c.stop())
    await c.start()
    t.equal(await c.invoke('Echo', 'over HTTP'), 'over HTTP', `${signalR.HttpTransportType[transport]}: an invocation round trip`)
    await c.stop()
  }

  const refused = client(`${baseUrl}/hub`, signalR.HttpTransportType.LongPolling, 'wrong')
  await t.rejects(refused.start(), /401/, "the application's onRequest hook still refuses a bad token")
  t.equal((await fetch(`${baseUrl}/hub/negotiate?negotiateVersion=1`, { method: 'POST' })).status, 401, 'negotiate is guarded too')

  const negotiated = await fetch(`${baseUrl}/hub/negotiate?negotiateVersion=1&access_token=${TOKEN}`, { method: 'POST' })
  const { connectionToken } = await negotiated.json() as { connectionToken: string }
  for (const url of [`${wsUrl}/hub?access_token=${TOKEN}`, `${wsUrl}/hub?access_token=${TOKEN}&id=${connectionToken}`]) {
    t.same(await upgradeStatus(url), { statusCode: 404, body: 'WebSockets transport not supported by this end point type' },
      `a WebSocket upgrade is refused with ASP.NET's text (${url.includes('id=') ? 'negotiated' : 'skipNegotiation'})`)
  }
  t.equal((await upgradeStatus(`${wsUrl}/hub`)).statusCode, 401, 'an unauthenticated upgrade meets the hook first')
})

t.test("a hub asking for webSockets when the plugin's transports leave them out", async (t) => {
  const app = Fastify()
  t.teardown(() => app.close())
  await app.register(signalr, { transports: ['longPolling'] })
  t.throws(() => app.mapHub('/ws', echo, { transports: ['webSockets', 'longPolling'] }),
    { code: 'SIGNALR_ERR_INVALID_OPTION', message: /mapHub\('\/ws'\).*@fastify\/websocket/ }, 'is refused at mapHub, saying what to do')
  t.doesNotThrow(() => app.mapHub('/lp', echo), 'a hub with the plugin-level transports is mapped')
})

t.test('@fastify/websocket registered by the application: a hub may still enable webSockets', async (t) => {
  const app = Fastify({ forceCloseConnections: true })
  t.teardown(() => app.close())
  await app.register(websocket)
  await app.register(signalr, { transports: ['longPolling'] })
  app.mapHub('/hub', echo, { transports: ['webSockets'] })
  await app.listen({ port: 0, host: '127.0.0.1' })
  const c = buildClient(`http://127.0.0.1:${(app.server.address() as { port: number }).port}/hub`)
  t.teardown(() => c.stop())
  await c.start()
  t.equal(await c.invoke('Echo', 'over a WebSocket'), 'over a WebSocket')
})
