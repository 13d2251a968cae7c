import t from 'tap'
import { z } from 'zod'
import { defineHub } from '../../lib/index.js'
import { startApp } from '../helpers/app.js'
import { closed, connect } from '../helpers/clients.js'

const hub = defineHub({
  methods: {
    Echo: { args: [z.string()], handler: (_h, s) => s },
    Rare: { args: [], rateLimit: { max: 1, timeWindow: 60_000 }, handler: () => 'rare' }
  }
})

t.test('calls over the connection limit get an error and the connection stays open', async (t) => {
  const { baseUrl } = await startApp(t, (app) => { app.mapHub('/hub', hub, { rateLimit: { max: 3, timeWindow: 60_000 } }) })
  const c = await connect(t, `${baseUrl}/hub`)
  const other = await connect(t, `${baseUrl}/hub`)
  t.equal(await c.invoke('Echo', 'a'), 'a')
  await t.rejects(c.invoke('Nope'), /Method does not exist/, 'an unknown method counts too')
  t.equal(await c.invoke('Echo', 'b'), 'b')
  await t.rejects(c.invoke('Echo', 'c'), { message: "Failed to invoke 'Echo': rate limit exceeded (at most 3 calls per 60000 ms)." })
  await t.rejects(c.invoke('Nope'), /rate limit exceeded/, 'unknown methods are refused by the limit as well')
  t.equal(c.state, 'Connected')
  t.equal(await other.invoke('Echo', 'x'), 'x', 'limits are per connection')
})

t.test('a method limit applies on top, and closeAfter closes a client that keeps going', async (t) => {
  const { baseUrl } = await startApp(t, (app) => {
    app.mapHub('/hub', hub, { rateLimit: { max: 100, timeWindow: 60_000, closeAfter: 2 }, enableDetailedErrors: true })
  })
  const c = await connect(t, `${baseUrl}/hub`)
  const ended = closed(c)
  t.equal(await c.invoke('Rare'), 'rare')
  await t.rejects(c.invoke('Rare'), /at most 1 calls per 60000 ms/)
  await t.rejects(c.invoke('Rare'), /rate limit exceeded/)
  const third = c.invoke('Rare').catch((err: Error) => err)
  const error = await ended
  t.match(error?.message, /Connection closed with an error\..*Rate limit exceeded too often/)
  t.ok(await third instanceof Error)
})

t.test('bad rate limits fail at definition and at register', async (t) => {
  t.throws(() => defineHub({ methods: { X: { args: [], rateLimit: { max: 0, timeWindow: 1 }, handler () {} } } }), /rateLimit/)
  const Fastify = (await import('fastify')).default
  const signalr = (await import('../../lib/index.js')).default
  const app = Fastify()
  t.teardown(() => app.close())
  await t.rejects(async () => { await app.register(signalr, { rateLimit: { max: 1 } as never }) }, /option "rateLimit"/)
})
