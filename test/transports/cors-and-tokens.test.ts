import { once } from 'node:events'
import http from 'node:http'
import { Writable } from 'node:stream'
import cors from '@fastify/cors'
import type { FastifyReply, FastifyRequest } from 'fastify'
import t, { type Test } from 'tap'
import { z } from 'zod'
import { defineHub } from '../../lib/index.js'
import { startApp } from '../helpers/app.js'
import { signalR } from '../helpers/clients.js'
import { buildCellClient, MATRIX } from '../helpers/matrix.js'
import { invocation, negotiateRaw, rawConnect, UpgradeRefused } from '../helpers/raw.js'

const APP_ORIGIN = 'http://app.example'
const EVIL_ORIGIN = 'http://evil.example'
/** The headers the official browser client adds to its HTTP requests (plus the bearer token). */
const CLIENT_HEADERS = ['x-requested-with', 'x-signalr-user-agent', 'authorization']

const hub = defineHub({
  methods: {
    Add: { args: [z.number(), z.number()], handler: (_h, a, b) => a + b },
    Seen: {
      args: [],
      handler: (h) => ({
        transport: h.transport,
        tokenInQuery: typeof (h.request.query as Record<string, unknown>).access_token === 'string',
        user: (h.request as FastifyRequest & { user?: string }).user ?? null
      })
    }
  }
})

function allowList (value: string | null): string[] {
  return (value ?? '').split(',').map((s) => s.trim().toLowerCase()).filter((s) => s !== '')
}

t.test('CORS with credentials for a hub on another origin (@fastify/cors)', async (t) => {
  // DELETE must be listed: @fastify/cors allows only GET, HEAD and POST by default (see the next test).
  const { baseUrl } = await startApp(t, async (app) => {
    await app.register(cors, { origin: [APP_ORIGIN], credentials: true, methods: ['GET', 'POST', 'DELETE'] })
    app.mapHub('/hub', hub)
  })

  const preflight = (path: string, method: string, origin = APP_ORIGIN): Promise<Response> => fetch(`${baseUrl}${path}`, {
    method: 'OPTIONS',
    headers: {
      origin,
      'access-control-request-method': method,
      'access-control-request-headers': CLIENT_HEADERS.join(', ')
    }
  })

  // negotiate, send, poll and DELETE all carry the client's custom headers, so each is preflighted.
  for (const [what, path, method] of [
    ['negotiate', '/hub/negotiate?negotiateVersion=1', 'POST'],
    ['send', '/hub?id=x', 'POST'],
    ['poll', '/hub?id=x&_=1', 'GET'],
    ['delete', '/hub?id=x', 'DELETE']
  ] as const) {
    const res = await preflight(path, method)
    t.equal(res.status, 204, `${what}: preflight answered`)
    t.equal(res.headers.get('access-control-allow-origin'), APP_ORIGIN, `${what}: the exact origin is echoed, never *`)
    t.equal(res.headers.get('access-control-allow-credentials'), 'true', `${what}: credentials allowed`)
    const allowed = allowList(res.headers.get('access-control-allow-headers'))
    for (const header of CLIENT_HEADERS) t.ok(allowed.includes(header), `${what}: allows ${header}`)
    t.ok(allowList(res.headers.get('access-control-allow-methods')).includes(method.toLowerCase()), `${what}: allows ${method}`)
    t.match(res.headers.get('vary') ?? '', /origin/i, `${what}: Vary: Origin`)
  }

  const evil = await preflight('/hub/negotiate?negotiateVersion=1', 'POST', EVIL_ORIGIN)
  t.equal(evil.headers.get('access-control-allow-origin'), null, 'another origin is not allowed')

  // The real requests carry the headers too.
  const negotiate = await fetch(`${baseUrl}/hub/negotiate?negotiateVersion=1`, {
    method: 'POST', headers: { origin: APP_ORIGIN, 'x-requested-with': 'XMLHttpRequest' }
  })
  t.equal(negotiate.status, 200)
  t.equal(negotiate.headers.get('access-control-allow-origin'), APP_ORIGIN)
  t.equal(negotiate.headers.get('access-control-allow-credentials'), 'true')
  const { connectionToken } = await negotiate.json() as { connectionToken: string }
  const poll = await fetch(`${baseUrl}/hub?id=${connectionToken}&_=1`, { headers: { origin: APP_ORIGIN } })
  t.equal(poll.status, 200, 'the first poll')
  t.equal(poll.headers.get('access-control-allow-origin'), APP_ORIGIN)
  const send = await fetch(`${baseUrl}/hub?id=${connectionToken}`, {
    method: 'POST', headers: { origin: APP_ORIGIN, 'content-type': 'text/plain;charset=UTF-8' }, body: '{"protocol":"json","version":1}\u001e'
  })
  t.equal(send.status, 200, 'a send: the CORS plugin leaves the raw body parser alone')
  t.equal(send.headers.get('access-control-allow-origin'), APP_ORIGIN)

  // The official client on every cell, sending an Origin as a browser would.
  for (const cell of MATRIX) {
    const c = buildCellClient(`${baseUrl}/hub`, cell, { headers: { origin: APP_ORIGIN } })
    t.teardown(() => c.stop())
    await c.start()
    t.equal(await c.invoke('Add', 1, 2), 3, `official client over ${cell.name} with the CORS plugin`)
    await c.stop()
  }
})

t.test("@fastify/cors's default methods leave out DELETE, which ends a long-polling connection", async (t) => {
  const { baseUrl } = await startApp(t, async (app) => {
    await app.register(cors, { origin: [APP_ORIGIN], credentials: true })
    app.mapHub('/hub', hub)
  })
  const res = await fetch(`${baseUrl}/hub?id=x`, {
    method: 'OPTIONS',
    headers: { origin: APP_ORIGIN, 'access-control-request-method': 'DELETE', 'access-control-request-headers': CLIENT_HEADERS.join(', ') }
  })
  const methods = allowList(res.headers.get('access-control-allow-methods'))
  t.notOk(methods.includes('delete'), `allowed by default: ${methods.join(', ')}; a browser would block the DELETE`)
  t.ok(methods.includes('post') && methods.includes('get'), 'negotiate, sends and polls are covered')
})

t.test('allowedOrigins is checked on WebSocket upgrades', async (t) => {
  const { baseUrl, wsUrl } = await startApp(t, (app) => {
    app.mapHub('/hub', hub, { allowedOrigins: [APP_ORIGIN] })
    app.mapHub('/open', hub)
  })
  const tokenOf = async (path: string): Promise<string> => (await negotiateRaw(`${baseUrl}${path}`)).body.connectionToken as string

  const refused = await rawConnect(t, `${wsUrl}/hub?id=${await tokenOf('/hub')}`, { headers: { origin: EVIL_ORIGIN } })
    .then(() => null, (err: unknown) => err)
  t.type(refused, UpgradeRefused)
  t.equal((refused as UpgradeRefused).statusCode, 403, 'another origin gets 403')
  t.equal((refused as UpgradeRefused).body, 'Origin not allowed')

  const skip = await rawConnect(t, `${wsUrl}/hub`, { headers: { origin: EVIL_ORIGIN } }).then(() => null, (err: unknown) => err)
  t.equal((skip as UpgradeRefused).statusCode, 403, 'also without negotiate (skipNegotiation)')

  const good = await rawConnect(t, `${wsUrl}/hub?id=${await tokenOf('/hub')}`, { headers: { origin: APP_ORIGIN }, handshake: true })
  good.send(invocation('Add', [2, 3], '1'))
  t.same(await good.next(), { type: 3, invocationId: '1', result: 5 }, 'the allowed origin connects')

  const noOrigin = await rawConnect(t, `${wsUrl}/hub?id=${await tokenOf('/hub')}`, { handshake: true })
  t.notOk(noOrigin.isClosed, 'a client without Origin (not a browser) is not refused')

  const open = await rawConnect(t, `${wsUrl}/open?id=${await tokenOf('/open')}`, { headers: { origin: EVIL_ORIGIN }, handshake: true })
  t.notOk(open.isClosed, 'a hub without allowedOrigins accepts any origin')

  // The official client is refused with the same origin check (its WebSocket start fails).
  const official = new signalR.HubConnectionBuilder()
    .withUrl(`${baseUrl}/hub`, { transport: signalR.HttpTransportType.WebSockets, headers: { origin: EVIL_ORIGIN } })
    .configureLogging(signalR.LogLevel.None)
    .build()
  await t.rejects(official.start(), 'the official client cannot connect from a refused origin')
})

const SECRET = 'SECRET tok+en/é=1'

interface AuthSeen { method: string, kind: string, via: 'header' | 'query' | 'none' }

/** A bearer check that, like ASP.NET apps do for hub paths, also accepts `access_token` from the query. */
function authHook (seen: AuthSeen[]) {
  return async (request: FastifyRequest, reply: FastifyReply): Promise<void> => {
    const header = request.headers.authorization
    const query = (request.query as Record<string, unknown>).access_token
    const kind = request.ws ? 'websocket' : (request.headers.accept ?? '').includes('text/event-stream') ? 'sse' : request.url.includes('/negotiate') ? 'negotiate' : 'http'
    const via = header !== undefined ? 'header' : typeof query === 'string' ? 'query' : 'none'
    seen.push({ method: request.method, kind, via })
    const token = header?.startsWith('Bearer ') === true ? header.slice('Bearer '.length) : query
    if (token !== SECRET) {
      await reply.code(401).send({ error: 'Unauthorized' })
      return
    }
    (request as FastifyRequest & { user?: string }).user = 'alice'
  }
}

function captureLogs (): { stream: Writable, text: () => string, lines: () => string[] } {
  const chunks: string[] = []
  return {
    stream: new Writable({ write (chunk: Buffer, _e, done) { chunks.push(chunk.toString('utf8')); done() } }),
    text: () => chunks.join(''),
    lines: () => chunks.join('').split('\n').filter((l) => l !== '')
  }
}

async function startAuthApp (t: Test) {
  const seen: AuthSeen[] = []
  const logs = captureLogs()
  const app = await startApp(t, async (app) => {
    await app.register(async (scope) => {
      scope.addHook('onRequest', authHook(seen))
      scope.mapHub('/hub', hub)
    })
  }, {}, { logger: { level: 'trace', stream: logs.stream } })
  return { ...app, seen, logs }
}

t.test('access_token in the query: readable by the auth hook on the WebSocket upgrade and the SSE GET, never logged', async (t) => {
  const { baseUrl, wsUrl, seen, logs } = await startAuthApp(t)

  t.test('SSE: the official client sends the token in the query', async (t) => {
    const sse = MATRIX.find((c) => c.transport === 'ServerSentEvents')!
    const c = buildCellClient(`${baseUrl}/hub`, sse, { accessToken: SECRET })
    t.teardown(() => c.stop())
    await c.start()
    t.same(await c.invoke('Seen'), { transport: 'ServerSentEvents', tokenInQuery: true, user: 'alice' },
      'the hub runs on the request the hook authenticated from the query')
    await c.stop()
    t.ok(seen.some((s) => s.kind === 'sse' && s.via === 'query'), 'the hook found the token in the query of the SSE GET')
    t.ok(seen.some((s) => s.kind === 'negotiate' && s.via === 'header'), 'negotiate carries the Authorization header')
  })

  t.test('WebSocket: a browser puts the token in the upgrade URL', async (t) => {
    const { body } = await fetch(`${baseUrl}/hub/negotiate?negotiateVersion=1`, {
      method: 'POST', headers: { authorization: `Bearer ${SECRET}` }
    }).then(async (r) => ({ body: await r.json() as { connectionToken: string } }))
    const before = seen.length
    const raw = await rawConnect(t, `${wsUrl}/hub?id=${body.connectionToken}&access_token=${encodeURIComponent(SECRET)}`, { handshake: true })
    t.same(seen.slice(before), [{ method: 'GET', kind: 'websocket', via: 'query' }], 'the hook read it from the upgrade query')
    raw.send(invocation('Seen', [], '1'))
    t.same(await raw.next(), { type: 3, invocationId: '1', result: { transport: 'WebSockets', tokenInQuery: true, user: 'alice' } })

    const refused = await rawConnect(t, `${wsUrl}/hub?access_token=wrong`).then(() => null, (err: unknown) => err)
    t.equal((refused as UpgradeRefused).statusCode, 401, 'a wrong token is refused at the upgrade')
  })

  t.test('WebSocket and long polling from the Node client: Authorization header', async (t) => {
    for (const cell of MATRIX.filter((c) => c.transport !== 'ServerSentEvents')) {
      const c = buildCellClient(`${baseUrl}/hub`, cell, { accessToken: SECRET })
      t.teardown(() => c.stop())
      await c.start()
      t.match(await c.invoke('Seen'), { transport: cell.transport, user: 'alice' }, cell.name)
      await c.stop()
    }
  })

  t.test('no log line holds the token, raw or URL-encoded', async (t) => {
    const text = logs.text()
    t.ok(logs.lines().length > 10, `the requests were logged (${logs.lines().length} lines at trace level)`)
    t.ok(text.includes('access_token=[redacted]'), 'the URLs were logged with the token redacted')
    for (const form of [SECRET, encodeURIComponent(SECRET), 'SECRET%20tok', 'SECRET+tok', 'tok+en']) {
      t.notOk(text.includes(form), `not in the logs: ${JSON.stringify(form)}`)
    }
  })
})

t.test('a refused SSE GET (bad token) is 401 and the EventSource never opens', async (t) => {
  const { baseUrl } = await startAuthApp(t)
  const { body } = await fetch(`${baseUrl}/hub/negotiate?negotiateVersion=1`, {
    method: 'POST', headers: { authorization: `Bearer ${SECRET}` }
  }).then(async (r) => ({ body: await r.json() as { connectionToken: string } }))
  const request = http.get(`${baseUrl}/hub?id=${body.connectionToken}&access_token=wrong`, { headers: { accept: 'text/event-stream' } })
  request.on('error', () => {})
  const [response] = await once(request, 'response') as [http.IncomingMessage]
  t.equal(response.statusCode, 401)
  t.notMatch(response.headers['content-type'] ?? '', /event-stream/)
  response.resume()
  const good = http.get(`${baseUrl}/hub?id=${body.connectionToken}&access_token=${encodeURIComponent(SECRET)}`, { headers: { accept: 'text/event-stream' } })
  good.on('error', () => {})
  t.teardown(() => { good.destroy() })
  const [ok] = await once(good, 'response') as [http.IncomingMessage]
  t.equal(ok.statusCode, 200, 'the same connection opens with the right token')
  t.equal(ok.headers['content-type'], 'text/event-stream')
})
