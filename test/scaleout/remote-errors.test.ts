// A client result that fails on another server keeps its kind: the server
// that asked applies the detailed-errors rule exactly as it does when the
// connection is its own. Two apps share a real backplane (the memory bus, and
// Redis on a private redis-server); the same calls go to a connection on the
// asking server and to one on the other server, and must read the same.
import { Redis } from 'ioredis'
import t, { type Test } from 'tap'
import { z } from 'zod'
import { defineHub, HubError, memoryBackplane, MemoryBus, SignalRError, type Backplane } from '../../lib/index.js'
import { redisBackplane } from '../../lib/redis/index.js'
import { startApp } from '../helpers/app.js'
import { connect, type signalR } from '../helpers/clients.js'
import { startRedis } from '../helpers/redis.js'

const hub = defineHub({
  name: 'remote-errors',
  methods: {
    // Uncaught: the dispatcher turns the failure into the caller's error text.
    Ask: { args: [z.string()], handler: (h, id) => h.clients.client(id).invoke('answer') },
    // Caught: what the hub method itself sees.
    Inspect: {
      args: [z.string()],
      async handler (h, id) {
        try {
          return { result: await h.clients.client(id).invoke('answer') }
        } catch (err) {
          const e = err as Error & { code?: string }
          return { message: e.message, code: e.code, hub: e instanceof HubError, signalr: e instanceof SignalRError }
        }
      }
    }
  }
})

const UNEXPECTED = "An unexpected error occurred invoking 'Ask' on the server."

/** Makes the answering client fail one way or the other. */
const failures = {
  // The official client sends its handler's error back in a Completion: ASP.NET's HubException.
  throws: (client: signalR.HubConnection) => { client.on('answer', () => { throw new Error('client failure') }) },
  // The connection ends while the server waits: a plain server-side error, hidden without detailed errors.
  leaves: (client: signalR.HubConnection) => { client.on('answer', () => { void client.stop(); return new Promise(() => {}) }) }
} as const

function expected (failure: keyof typeof failures, id: string, detailed: boolean): { ask: string, inspect: object } {
  if (failure === 'throws') {
    const text = 'Error: client failure'
    return { ask: `${UNEXPECTED} HubException: ${text}`, inspect: { message: text, code: 'SIGNALR_ERR_HUB', hub: true, signalr: false } }
  }
  const text = `Connection '${id}' disconnected.`
  return {
    ask: detailed ? `${UNEXPECTED} SignalRError: ${text}` : UNEXPECTED,
    inspect: { message: text, code: 'SIGNALR_ERR_CONNECTION_DISCONNECTED', hub: false, signalr: true }
  }
}

async function runMatrix (t: Test, makeBackplane: () => Backplane): Promise<void> {
  for (const detailed of [false, true]) {
    await t.test(`enableDetailedErrors: ${detailed}`, async (t) => {
      const options = { backplane: makeBackplane(), enableDetailedErrors: detailed }
      const a = await startApp(t, (app) => { app.mapHub('/hub', hub) }, options)
      const b = await startApp(t, (app) => { app.mapHub('/hub', hub) }, { ...options, backplane: makeBackplane() })
      const asker = await connect(t, `${a.baseUrl}/hub`)
      for (const failure of ['throws', 'leaves'] as const) {
        for (const [where, baseUrl] of [['local', a.baseUrl], ['remote', b.baseUrl]] as const) {
          for (const call of ['Ask', 'Inspect'] as const) {
            const answerer = await connect(t, `${baseUrl}/hub`)
            failures[failure](answerer)
            const id = answerer.connectionId!
            const want = expected(failure, id, detailed)
            if (call === 'Ask') {
              // Compared whole: a masked text is a prefix of the detailed one.
              const error = await asker.invoke('Ask', id).then(() => null, (err: Error) => err)
              t.equal(error?.message, want.ask, `${failure}, ${where}: the caller's text`)
            } else {
              t.same(await asker.invoke('Inspect', id), want.inspect, `${failure}, ${where}: the error the hub method catches`)
            }
          }
        }
      }
    })
  }
}

t.test('over the memory bus', async (t) => {
  const bus = new MemoryBus()
  await runMatrix(t, () => memoryBackplane(bus))
})

t.test('over Redis', async (t) => {
  const redis = await startRedis(t)
  await runMatrix(t, () => {
    const client = new Redis({ port: redis.port, host: '127.0.0.1' })
    const backplane = redisBackplane({ redis: client })
    // Registered before the app's own teardown, so it runs after the app has closed.
    t.teardown(async () => { await backplane.close(); client.disconnect() })
    return backplane
  })
})
