import type { FastifyReply, FastifyRequest } from 'fastify'
import t, { type Test } from 'tap'
import { defineHub } from '../lib/index.js'
import { startApp } from './helpers/app.js'
import { buildClient, connect } from './helpers/clients.js'
import { rawConnect, upgradeStatus } from './helpers/raw.js'

interface User { sub: string }

// Read through a cast rather than a `declare module 'fastify'` augmentation,
// which would leak this test's `user` type into every other file of the program.
function userOf (request: FastifyRequest): User | null {
  return (request as FastifyRequest & { user: User | null }).user
}

const TOKENS: Record<string, User> = { 'alice-token': { sub: 'alice' } }

/** A bearer check standing in for @fastify/jwt: sets `request.user` or answers 401. */
async function verify (request: FastifyRequest, reply: FastifyReply): Promise<void> {
  const header = request.headers.authorization ?? ''
  const user = header.startsWith('Bearer ') ? TOKENS[header.slice('Bearer '.length)] : undefined
  if (user === undefined) {
    await reply.code(401).send({ error: 'Unauthorized' })
    return
  }
  (request as FastifyRequest & { user: User | null }).user = user
}

const whoHub = defineHub({
  methods: {
    Who: {
      args: [],
      handler: (hub) => ({ user: userOf(hub.request)?.sub ?? null, userId: hub.userId ?? null })
    }
  }
})

async function start (t: Test) {
  let negotiateSeen: string | undefined
  const app = await startApp(t, async (app) => {
    app.decorateRequest('user', null)
    await app.register(async (scope) => {
      scope.addHook('onRequest', verify)
      scope.mapHub('/admin', whoHub)
    })
    // A second hub outside the scope: the admin hook must not reach it.
    app.mapHub('/public', whoHub)
    app.addHook('onRequest', async (request) => {
      if (request.url.startsWith('/admin/negotiate')) negotiateSeen = request.headers.authorization
    })
  }, { getUserId: (request) => userOf(request)?.sub })
  return { ...app, negotiateAuthorization: () => negotiateSeen }
}

t.test('without a token the scoped hub refuses everything', async (t) => {
  const { baseUrl, wsUrl } = await start(t)

  const negotiate = await fetch(`${baseUrl}/admin/negotiate?negotiateVersion=1`, { method: 'POST' })
  t.equal(negotiate.status, 401, 'negotiate')
  await negotiate.arrayBuffer()

  t.equal((await upgradeStatus(`${wsUrl}/admin`)).statusCode, 401, 'WebSocket upgrade without id (skipNegotiation)')

  // A token from an authenticated negotiate is not a credential on its own.
  const allowed = await fetch(`${baseUrl}/admin/negotiate?negotiateVersion=1`, {
    method: 'POST', headers: { authorization: 'Bearer alice-token' }
  })
  t.equal(allowed.status, 200)
  const { connectionToken } = await allowed.json() as { connectionToken: string }
  t.equal((await upgradeStatus(`${wsUrl}/admin?id=${connectionToken}`)).statusCode, 401, 'WebSocket upgrade with id')
  const raw = await rawConnect(t, `${wsUrl}/admin?id=${connectionToken}`, {
    handshake: true, headers: { authorization: 'Bearer alice-token' }
  })
  t.notOk(raw.isClosed, 'the refused upgrades did not use up the negotiated connection')

  const wrong = await fetch(`${baseUrl}/admin/negotiate?negotiateVersion=1`, {
    method: 'POST', headers: { authorization: 'Bearer mallory-token' }
  })
  t.equal(wrong.status, 401, 'an unknown token')
  await wrong.arrayBuffer()
})

t.test('the official client cannot start without a token', async (t) => {
  const { baseUrl } = await start(t)
  const c = buildClient(`${baseUrl}/admin`)
  t.teardown(() => c.stop())
  await t.rejects(c.start(), /401|Unauthorized/)

  const skipping = buildClient(`${baseUrl}/admin`, { skipNegotiation: true })
  t.teardown(() => skipping.stop())
  await t.rejects(skipping.start(), 'skipNegotiation goes straight to the upgrade, which is refused too')

  const wrong = buildClient(`${baseUrl}/admin`, { accessToken: 'mallory-token' })
  t.teardown(() => wrong.stop())
  await t.rejects(wrong.start(), /401|Unauthorized/)
})

t.test('with accessTokenFactory the client connects and the hub sees the user', async (t) => {
  const { baseUrl, negotiateAuthorization } = await start(t)
  const c = await connect(t, `${baseUrl}/admin`, { accessToken: 'alice-token' })
  t.equal(negotiateAuthorization(), 'Bearer alice-token', 'negotiate carried the bearer token')
  t.same(await c.invoke('Who'), { user: 'alice', userId: 'alice' }, 'hub.request.user and hub.userId from getUserId')
})

t.test('the WebSocket upgrade itself carries the token (Node client: Authorization header)', async (t) => {
  const { baseUrl, wsUrl } = await start(t)
  // Negotiation skipped: only the upgrade request can have passed the hook.
  const c = await connect(t, `${baseUrl}/admin`, { accessToken: 'alice-token', skipNegotiation: true })
  t.same(await c.invoke('Who'), { user: 'alice', userId: 'alice' })

  const raw = await rawConnect(t, `${wsUrl}/admin`, { handshake: true, headers: { authorization: 'Bearer alice-token' } })
  t.notOk(raw.isClosed, 'a raw upgrade with the header is accepted')
})

t.test('the public hub is not affected by the admin scope\'s hook', async (t) => {
  const { baseUrl, wsUrl } = await start(t)
  const negotiate = await fetch(`${baseUrl}/public/negotiate?negotiateVersion=1`, { method: 'POST' })
  t.equal(negotiate.status, 200)
  await negotiate.arrayBuffer()
  t.equal((await upgradeStatus(`${wsUrl}/public`)).statusCode, 101)

  const c = await connect(t, `${baseUrl}/public`)
  t.same(await c.invoke('Who'), { user: null, userId: null }, 'no user, so no user id')

  // A token sent to the public hub is simply ignored by it.
  const withToken = await connect(t, `${baseUrl}/public`, { accessToken: 'alice-token' })
  t.same(await withToken.invoke('Who'), { user: null, userId: null })
})
