// app.signalr.inject beyond the happy path: the order of invocations the
// server holds back, a connect the app refuses, the URL it builds, and the
// typed client's errors in both stream directions.
import type { FastifyInstance } from 'fastify'
import t, { type Test } from 'tap'
import { z } from 'zod'
import { clientStream, defineHub } from '../../lib/index.js'
import { typedHub } from '../../lib/client/index.js'
import { unlistenedApp } from '../helpers/app.js'
import { deferred } from '../helpers/deferred.js'

/** What the handlers did, in order; each test starts it empty. */
const steps: string[] = []
let connectedGate = deferred()
let slowGate = deferred()
let slowStarted = deferred()

const ordered = defineHub({
  methods: {
    Slow: { args: [], async handler () { steps.push('slow start'); slowStarted.resolve(); await slowGate.promise; steps.push('slow end'); return 'slow' } },
    Quick: { args: [z.number()], handler: (_hub, n) => { steps.push(`quick ${n}`); return n } },
    Query: { args: [], handler: (hub) => hub.request.query },
    Upload: {
      args: [clientStream(z.string())],
      async handler (_hub, items) {
        const got: string[] = []
        for await (const item of items) got.push(item)
        return got
      }
    },
    Countdown: {
      args: [z.number()],
      stream: true,
      async * handler (_hub, from) {
        for (let i = from; i > 0; i--) yield i
        throw new Error('liftoff failed')
      }
    }
  },
  async onConnected () {
    steps.push('onConnected start')
    await connectedGate.promise
    steps.push('onConnected end')
  }
})

async function buildApp (t: Test, setup?: (app: FastifyInstance) => void): Promise<FastifyInstance> {
  steps.length = 0
  connectedGate = deferred()
  connectedGate.resolve()
  slowGate = deferred()
  slowStarted = deferred()
  return await unlistenedApp(t, setup ?? ((app) => { app.mapHub('/ordered', ordered) }), { enableDetailedErrors: true })
}

t.test('invocations sent while a handler runs wait, then run in the order they were sent', async (t) => {
  const app = await buildApp(t)
  const connection = await app.signalr.inject('/ordered')
  const slow = connection.invoke('Slow')
  const quick = [1, 2, 3].map((n) => connection.invoke('Quick', n))
  // Quick(1) is only read once Slow is done (one invocation at a time per client, as in ASP.NET).
  const firstQuick = quick[0]!.then(() => { steps.push('client got quick 1') })
  await new Promise((resolve) => { setImmediate(resolve) })
  slowGate.resolve()
  t.same(await Promise.all([slow, ...quick]), ['slow', 1, 2, 3])
  await firstQuick
  t.same(steps.slice(0, 5), ['onConnected start', 'onConnected end', 'slow start', 'slow end', 'quick 1'],
    'nothing else ran while Slow was running')
  t.same(steps.filter((s) => s.startsWith('quick')), ['quick 1', 'quick 2', 'quick 3'])
  await connection.stop()
})

t.test('an invocation sent right after start waits for onConnected to finish', async (t) => {
  const app = await buildApp(t)
  connectedGate = deferred()
  const connection = await app.signalr.inject('/ordered')
  t.same(steps, ['onConnected start'], 'start() resolved with the handshake, onConnected still running')
  const answer = connection.invoke('Quick', 7)
  await new Promise((resolve) => { setImmediate(resolve) })
  connectedGate.resolve()
  t.equal(await answer, 7)
  t.same(steps, ['onConnected start', 'onConnected end', 'quick 7'])
  await connection.stop()
})

t.test('a connect request the app refuses after negotiate was allowed rejects inject with its status and body', async (t) => {
  const app = await buildApp(t, (app) => {
    void app.register(async (scope) => {
      // E.g. an auth hook that lets negotiate through and checks the connect request.
      scope.addHook('onRequest', async (request, reply) => {
        if (request.method === 'GET') return reply.code(403).send('connect refused')
      })
      scope.mapHub('/guarded', ordered)
    })
  })
  await t.rejects(app.signalr.inject('/guarded'), /connect failed with status 403: connect refused/)
  t.same(steps, [], 'the hub never saw a connection')
})

t.test('an unknown hub path rejects with 404', async (t) => {
  const app = await buildApp(t)
  await t.rejects(app.signalr.inject('/nowhere'), /negotiation .*Status code '404'/, 'the official client reports the failed negotiate')
})

t.test('query options are added to a path that has a query of its own', async (t) => {
  const app = await buildApp(t)
  const connection = await app.signalr.inject('/ordered?room=blue', { query: { user: 'ada', note: 'a&b=c' } })
  t.match(await connection.invoke('Query'), { room: 'blue', user: 'ada', note: 'a&b=c' }, 'both reach hub.request.query, encoded')
  await connection.stop()
})

t.test('the typed client: an upload that fails, a stream that fails after its items', async (t) => {
  const app = await buildApp(t)
  const hub = typedHub<typeof ordered>(await app.signalr.inject('/ordered'))
  async function * good (): AsyncGenerator<string> { yield 'a'; yield 'b' }
  t.same(await hub.invoke.Upload(good()), ['a', 'b'], 'any async iterable is uploaded as a client stream')
  async function * broken (): AsyncGenerator<string> { yield 'a'; throw new Error('disk gone') }
  await t.rejects(hub.invoke.Upload(broken()), /disk gone/, 'an iterable that throws fails the upload, and the invocation with it')

  const seen: number[] = []
  await t.rejects((async () => { for await (const n of hub.stream.Countdown(3)) seen.push(n) })(), /liftoff failed/,
    'a server stream that throws ends the loop with its error')
  t.same(seen, [3, 2, 1], 'after every item sent before the error')
  t.equal(await hub.invoke.Quick(1), 1, 'the connection is still usable')
  await hub.connection.stop()
})

t.test('closing the app while a handler runs: the pending invocation rejects and the client hears the close', async (t) => {
  const app = await buildApp(t)
  const connection = await app.signalr.inject('/ordered')
  const closed = new Promise<Error | undefined>((resolve) => { connection.onclose(resolve) })
  const slow = connection.invoke('Slow')
  const rejected = t.rejects(slow, /connection being closed/, 'the invocation in flight is rejected by the client')
  await slowStarted.promise
  const closing = app.close()
  t.equal(await closed, undefined, 'a clean close (the server allows a reconnect)')
  await rejected
  slowGate.resolve()
  await closing
  t.same(steps.slice(-1), ['slow end'], 'the handler finished; its late result went nowhere')
  t.equal(connection.state, 'Disconnected')
})
