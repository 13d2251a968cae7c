import t from 'tap'
import { z } from 'zod'
import { defineHub } from '../../lib/index.js'
import { startApp } from '../helpers/app.js'
import { connect } from '../helpers/clients.js'
import { invocation, negotiateRaw, probeUpgrade, rawConnect, upgradeStatus } from '../helpers/raw.js'

const hub = defineHub({
  methods: {
    Add: { args: [z.number(), z.number()], handler: (_hub, a, b) => a + b },
    WhoAmI: { args: [], handler: (hub) => hub.connectionId }
  }
})

type RawAnswer = Record<string, unknown>

const WEBSOCKETS_ENTRY = { transport: 'WebSockets', transferFormats: ['Text', 'Binary'] }

t.test('negotiateVersion=1 answers with an id, a separate secret token and the transports', async (t) => {
  const { baseUrl } = await startApp(t, (app) => { app.mapHub('/hub', hub) })
  const { status, contentType, body } = await negotiateRaw(`${baseUrl}/hub`)
  t.equal(status, 200)
  t.match(contentType, /^application\/json/)
  t.equal(body.negotiateVersion, 1)
  t.type(body.connectionId, 'string')
  t.type(body.connectionToken, 'string')
  const id = body.connectionId as string
  const token = body.connectionToken as string
  t.ok(id.length > 0)
  t.ok(token.length >= 22, 'the token carries at least 16 random bytes')
  t.match(token, /^[A-Za-z0-9_-]+$/, 'the token is URL-safe (the client does not encode it)')
  t.not(token, id, 'the secret token is not the public id')
  t.notOk('error' in body)
  t.notOk('ProtocolVersion' in body, 'a ProtocolVersion key would make the client think this is legacy SignalR')
  t.ok(Array.isArray(body.availableTransports))
  t.same((body.availableTransports as unknown[]).find((e) => (e as { transport: string }).transport === 'WebSockets'), WEBSOCKETS_ENTRY)

  const second = await negotiateRaw(`${baseUrl}/hub`)
  t.not(second.body.connectionId, id, 'every negotiation makes a new connection')
  t.not(second.body.connectionToken, token)
})

t.test('without negotiateVersion the answer is version 0: no token, the id is used as id=', async (t) => {
  const { baseUrl, wsUrl } = await startApp(t, (app) => { app.mapHub('/hub', hub) })
  const { status, body } = await negotiateRaw(`${baseUrl}/hub`, '')
  t.equal(status, 200)
  t.equal(body.negotiateVersion, 0)
  t.type(body.connectionId, 'string')
  t.notOk('connectionToken' in body)
  t.same((body.availableTransports as unknown[]).find((e) => (e as { transport: string }).transport === 'WebSockets'), WEBSOCKETS_ENTRY)

  // A version-0 client copies connectionId into the token, so that id must open the connection.
  const raw = await rawConnect(t, `${wsUrl}/hub?id=${body.connectionId as string}`, { handshake: true })
  raw.send(invocation('WhoAmI', [], '1'))
  t.same(await raw.next(), { type: 3, invocationId: '1', result: body.connectionId })
})

t.test('negotiate ignores a body of any content type, as ASP.NET does; the scope hooks still run', async (t) => {
  let preHandlerRuns = 0
  const { baseUrl } = await startApp(t, (app) => {
    app.addHook('preHandler', async (request) => { if (request.url.includes('/negotiate')) preHandlerRuns++ })
    app.mapHub('/hub', hub)
  })
  const bodies: Array<[string, string]> = [
    ['text/plain;charset=UTF-8', ''], // what the official JavaScript client sends
    ['application/json', '{'],
    ['application/x-unknown', 'x'.repeat(100_000)]
  ]
  for (const [contentType, body] of bodies) {
    const res = await fetch(`${baseUrl}/hub/negotiate?negotiateVersion=1`, { method: 'POST', headers: { 'content-type': contentType }, body })
    t.equal(res.status, 200, contentType)
    const answer = await res.json() as RawAnswer
    t.type(answer.connectionToken, 'string', `${contentType}: a negotiate answer`)
  }
  // The unread body was discarded: the same keep-alive connection serves the next request.
  t.equal((await negotiateRaw(`${baseUrl}/hub`)).status, 200)
  t.equal(preHandlerRuns, bodies.length + 1, 'a preHandler hook (it runs after body parsing) ran on every negotiate')
})

t.test('negotiate version selection', async (t) => {
  const { baseUrl } = await startApp(t, (app) => { app.mapHub('/hub', hub) })

  const nonInteger = await negotiateRaw(`${baseUrl}/hub`, 'negotiateVersion=abc')
  t.equal(nonInteger.status, 200, 'errors are still HTTP 200')
  t.same(nonInteger.body, { error: 'The client requested a non-integer protocol version.' })

  const tooHigh = await negotiateRaw(`${baseUrl}/hub`, 'negotiateVersion=5')
  t.equal(tooHigh.status, 200)
  t.equal(tooHigh.body.negotiateVersion, 1, 'a newer client is answered with the highest version the server speaks')
  t.type(tooHigh.body.connectionToken, 'string')

  const caseInsensitive = await negotiateRaw(`${baseUrl}/hub`, 'NegotiateVersion=1')
  t.equal(caseInsensitive.body.negotiateVersion, 1, 'query keys match case-insensitively, as in ASP.NET')

  const negative = await negotiateRaw(`${baseUrl}/hub`, 'negotiateVersion=-1')
  t.equal(negative.status, 200)
  t.same(negative.body, { error: "The client requested version '-1', but the server does not support this version." },
    'a negative version is refused with ASP.NET\'s text')

  const repeated = await negotiateRaw(`${baseUrl}/hub`, 'negotiateVersion=0&negotiateVersion=1')
  t.equal(repeated.body.negotiateVersion, 0, 'a repeated key: the first value counts')
  t.notOk('connectionToken' in repeated.body)
})

t.test('the WebSocket endpoint accepts only the secret token in id=', async (t) => {
  const { baseUrl, wsUrl } = await startApp(t, (app) => { app.mapHub('/hub', hub) })
  const { body } = await negotiateRaw(`${baseUrl}/hub`)
  const id = body.connectionId as string
  const token = body.connectionToken as string

  const byId = await upgradeStatus(`${wsUrl}/hub?id=${id}`)
  t.equal(byId.statusCode, 404, 'the public connection id does not open the connection')
  t.equal(byId.body, 'No Connection with that ID')
  t.equal((await upgradeStatus(`${wsUrl}/hub?id=not-a-token`)).statusCode, 404, 'an unknown token is refused')

  const raw = await rawConnect(t, `${wsUrl}/hub?id=${token}`, { handshake: true })
  raw.send(invocation('WhoAmI', [], '1'))
  t.same(await raw.next(), { type: 3, invocationId: '1', result: id }, 'the token opens the connection negotiate announced')

  t.equal((await upgradeStatus(`${wsUrl}/hub?id=${token}`)).statusCode, 409, 'a token in use cannot open a second socket')
  raw.send(invocation('Add', [1, 2], '2'))
  t.same(await raw.next(), { type: 3, invocationId: '2', result: 3 }, 'the first socket is untouched by the refused one')

  raw.ws.close()
  await raw.closed
  // The heartbeat is not involved here: a closed connection is removed at once.
  await t.rejects(rawConnect(t, `${wsUrl}/hub?id=${token}`), { name: 'UpgradeRefused', statusCode: 404 }, 'a token is dead once its connection ended')
})

t.test('connecting without id creates a connection on the spot (skipNegotiation)', async (t) => {
  const { wsUrl } = await startApp(t, (app) => { app.mapHub('/hub', hub) })
  const a = await rawConnect(t, `${wsUrl}/hub`, { handshake: true })
  const b = await rawConnect(t, `${wsUrl}/hub`, { handshake: true })
  a.send(invocation('WhoAmI', [], '1'))
  b.send(invocation('WhoAmI', [], '1'))
  const idA = (await a.next()).result
  const idB = (await b.next()).result
  t.type(idA, 'string')
  t.type(idB, 'string')
  t.not(idA, idB, 'each socket without id is its own connection')
})

t.test('the official client connects with skipNegotiation and invokes', async (t) => {
  const { baseUrl } = await startApp(t, (app) => { app.mapHub('/hub', hub) })
  const c = await connect(t, `${baseUrl}/hub`, { skipNegotiation: true })
  t.equal(c.connectionId, null, 'the client learns no id without negotiate')
  t.equal(await c.invoke('Add', 20, 22), 42)
  t.type(await c.invoke('WhoAmI'), 'string')
})

t.test('an unused negotiation expires after disconnectTimeout', async (t) => {
  const { baseUrl, wsUrl } = await startApp(t, (app) => { app.mapHub('/hub', hub) }, { disconnectTimeout: 100 })
  const { body } = await negotiateRaw(`${baseUrl}/hub`)
  const token = body.connectionToken as string

  // The probe looks the token up without consuming it: 400 is ws refusing the probe's bad key after our route let it through.
  // (The test below shows the probe tells a live token, 400, from a gone one, 404.)
  let status = 0
  for (let i = 0; i < 5000 && status !== 404; i++) status = await probeUpgrade(`${wsUrl}/hub?id=${token}`)
  t.equal(status, 404, 'the negotiation expired')

  await t.rejects(rawConnect(t, `${wsUrl}/hub?id=${token}`), { name: 'UpgradeRefused', statusCode: 404 }, 'an expired token cannot open a WebSocket')

  const fresh = await negotiateRaw(`${baseUrl}/hub`)
  const raw = await rawConnect(t, `${wsUrl}/hub?id=${fresh.body.connectionToken as string}`, { handshake: true })
  raw.send(invocation('WhoAmI', [], '1'))
  t.same(await raw.next(), { type: 3, invocationId: '1', result: fresh.body.connectionId }, 'a fresh negotiation works')
})

t.test('the probe does not consume a live negotiation', async (t) => {
  const { baseUrl, wsUrl } = await startApp(t, (app) => { app.mapHub('/hub', hub) })
  const { body } = await negotiateRaw(`${baseUrl}/hub`)
  const token = body.connectionToken as string
  t.equal(await probeUpgrade(`${wsUrl}/hub?id=${token}`), 400)
  t.equal(await probeUpgrade(`${wsUrl}/hub?id=unknown`), 404)
  const raw = await rawConnect(t, `${wsUrl}/hub?id=${token}`, { handshake: true })
  raw.send(invocation('Add', [2, 3], '1'))
  t.same(await raw.next(), { type: 3, invocationId: '1', result: 5 })
  t.equal(await probeUpgrade(`${wsUrl}/hub?id=${token}`), 409)
})
