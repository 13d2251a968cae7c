import t from 'tap'
import { z } from 'zod'
import { defineHub } from '../../lib/index.js'
import { startApp } from '../helpers/app.js'
import { deferred, type Deferred } from '../helpers/deferred.js'
import { connect } from '../helpers/clients.js'

// A deadlock or a lost rejection would only end at tap's timeout; fail sooner.
const timeout = 10_000

type Outcome = { result: unknown } | { error: string }

/** Turns a client result into a value the hub method can hand back to the test. */
async function outcome (pending: Promise<unknown>): Promise<Outcome> {
  try {
    return { result: await pending }
  } catch (err) {
    return { error: (err as Error).message }
  }
}

/** `reported` receives what a hub method saw of a client result whose caller may be gone. */
function makeHub (reported?: Deferred<Outcome>) {
  return defineHub({
    methods: {
      AskCaller: {
        args: [z.string(), z.array(z.unknown())],
        handler: (hub, method, args) => hub.clients.caller.invoke(method, ...args)
      },
      TryCaller: {
        args: [z.string()],
        handler: (hub, method) => outcome(hub.clients.caller.invoke(method))
      },
      TryClient: {
        args: [z.string(), z.string()],
        handler: (hub, connectionId, method) => outcome(hub.clients.client(connectionId).invoke(method))
      },
      ReportCaller: {
        args: [z.string()],
        async handler (hub, method) {
          reported?.resolve(await outcome(hub.clients.caller.invoke(method)))
        }
      },
      Echo: { args: [z.string()], handler: (_hub, s) => s }
    }
  })
}

t.test('clients.caller.invoke returns what the caller handler returned', async (t) => {
  const { baseUrl } = await startApp(t, (app) => { app.mapHub('/hub', makeHub()) })
  const c = await connect(t, `${baseUrl}/hub`)
  c.on('GetMessage', () => 'hi')
  c.on('Add', (a: number, b: number) => a + b)
  c.on('Later', async () => { await Promise.resolve(); return { nested: [1, 'two'] } })
  c.on('Nothing', () => null)

  t.equal(await c.invoke('AskCaller', 'GetMessage', []), 'hi')
  t.equal(await c.invoke('AskCaller', 'getmessage', []), 'hi', 'client method names match case-insensitively')
  t.equal(await c.invoke('AskCaller', 'Add', [2, 3]), 5, 'arguments reach the client handler')
  t.same(await c.invoke('AskCaller', 'Later', []), { nested: [1, 'two'] }, 'an async client handler is awaited')
  t.equal(await c.invoke('AskCaller', 'Nothing', []), null, 'a null result is a result')
})

t.test('clients.client(id).invoke reaches another connection', async (t) => {
  const { baseUrl } = await startApp(t, (app) => { app.mapHub('/hub', makeHub()) })
  const asker = await connect(t, `${baseUrl}/hub`)
  const answerer = await connect(t, `${baseUrl}/hub`)
  let askerCalled = false
  asker.on('GetMessage', () => { askerCalled = true; return 'from the asker' })
  answerer.on('GetMessage', () => 'from the answerer')

  t.same(await asker.invoke('TryClient', answerer.connectionId, 'GetMessage'), { result: 'from the answerer' })
  t.equal(askerCalled, false, 'only the addressed connection was asked')
  t.same(await asker.invoke('TryClient', 'no-such-connection', 'GetMessage'), {
    error: "Connection 'no-such-connection' does not exist."
  })
})

t.test('a throwing client handler rejects the server-side promise', async (t) => {
  const { baseUrl } = await startApp(t, (app) => { app.mapHub('/hub', makeHub()) })
  const c = await connect(t, `${baseUrl}/hub`)
  c.on('GetMessage', () => { throw new Error('client failure') })

  t.same(await c.invoke('TryCaller', 'GetMessage'), { error: 'Error: client failure' })
  await t.rejects(c.invoke('AskCaller', 'GetMessage', []), {
    message: "An unexpected error occurred invoking 'AskCaller' on the server. HubException: Error: client failure"
  }, 'uncaught, it fails the hub method like a HubException')
})

t.test("a client without a handler rejects with Client didn't provide a result.", async (t) => {
  const { baseUrl } = await startApp(t, (app) => { app.mapHub('/hub', makeHub()) })
  const c = await connect(t, `${baseUrl}/hub`)
  c.on('ReturnsNothing', () => {})

  t.same(await c.invoke('TryCaller', 'NotRegistered'), { error: "Client didn't provide a result." })
  t.same(await c.invoke('TryCaller', 'ReturnsNothing'), { error: "Client didn't provide a result." }, 'nor does a handler returning undefined')
})

t.test('another client disconnecting while the server awaits its result rejects the wait', { timeout }, async (t) => {
  const { baseUrl } = await startApp(t, (app) => { app.mapHub('/hub', makeHub()) })
  const asker = await connect(t, `${baseUrl}/hub`)
  const leaver = await connect(t, `${baseUrl}/hub`)
  const leaverId = leaver.connectionId!
  const asked = deferred()
  leaver.on('GetMessage', () => { asked.resolve(); return new Promise(() => {}) })

  const answer = asker.invoke('TryClient', leaverId, 'GetMessage')
  await asked.promise
  await leaver.stop()
  t.same(await answer, { error: `Connection '${leaverId}' disconnected.` })
})

t.test('the caller disconnecting while the server awaits its result rejects the wait', { timeout }, async (t) => {
  const reported = deferred<Outcome>()
  const { baseUrl } = await startApp(t, (app) => { app.mapHub('/hub', makeHub(reported)) })
  const c = await connect(t, `${baseUrl}/hub`)
  const id = c.connectionId!
  const asked = deferred()
  c.on('GetMessage', () => { asked.resolve(); return new Promise(() => {}) })

  c.invoke('ReportCaller', 'GetMessage').catch(() => {}) // rejected by stop(): the connection goes away
  await asked.promise
  await c.stop()
  t.same(await reported.promise, { error: `Connection '${id}' disconnected.` })
})

t.test('inside onConnected, caller.invoke and client(own id).invoke both refuse at once, with the same error', { timeout }, async (t) => {
  interface Refusal { proxy: string, message?: string, code?: string, answered?: unknown }
  const hub = defineHub({
    methods: { Echo: { args: [z.string()], handler: (_hub, s) => s } },
    async onConnected (hub) {
      const refusals: Refusal[] = []
      const proxies = [['caller', hub.clients.caller], ['client(own id)', hub.clients.client(hub.connectionId)]] as const
      for (const [proxy, target] of proxies) {
        try {
          refusals.push({ proxy, answered: await target.invoke('GetMessage') })
        } catch (err) {
          refusals.push({ proxy, message: (err as Error).message, code: (err as { code?: string }).code })
        }
      }
      await hub.clients.caller.send('Refusals', refusals)
    }
  })
  // Far past the test's own timeout: a guard that let the call through would wait for this.
  const { baseUrl } = await startApp(t, (app) => { app.mapHub('/hub', hub) }, { clientResultTimeout: 60_000 })
  const refusals = deferred<Refusal[]>()
  let asked = 0
  const c = await connect(t, `${baseUrl}/hub`, {
    before: (c) => {
      c.on('GetMessage', () => { asked++; return 'hi' })
      c.on('Refusals', (r: Refusal[]) => { refusals.resolve(r) })
    }
  })
  const refused = { message: 'Client results inside onConnected are not allowed.', code: 'SIGNALR_ERR_CLIENT_RESULT_IN_ON_CONNECTED' }
  t.same(await refusals.promise, [{ proxy: 'caller', ...refused }, { proxy: 'client(own id)', ...refused }])
  t.equal(asked, 0, 'the client was never asked')
  t.equal(await c.invoke('Echo', 'after'), 'after', 'the connection works once onConnected has returned')
})

t.test('clientResultTimeout rejects a result that never comes', { timeout }, async (t) => {
  const { baseUrl } = await startApp(t, (app) => { app.mapHub('/hub', makeHub()) }, { clientResultTimeout: 100 })
  const c = await connect(t, `${baseUrl}/hub`)
  const late = deferred<string>()
  c.on('GetMessage', () => late.promise)

  t.same(await c.invoke('TryCaller', 'GetMessage'), { error: "Timed out after 100 ms waiting for the client's result of 'GetMessage'." })
  // The answer now arrives for an id the server has forgotten: it is dropped.
  late.resolve('too late')
  t.equal(await c.invoke('Echo', 'still fine'), 'still fine')
})

t.test('a method awaiting its own caller does not deadlock at maximumParallelInvocationsPerClient: 1', { timeout }, async (t) => {
  const { baseUrl } = await startApp(t, (app) => { app.mapHub('/hub', makeHub()) }, { maximumParallelInvocationsPerClient: 1 })
  const c = await connect(t, `${baseUrl}/hub`)
  c.on('GetMessage', () => 'hi')
  // The client answers by invoking the hub again: that needs the slot the waiting method held.
  c.on('AskBack', async () => await c.invoke('Echo', 'nested'))

  t.equal(await c.invoke('AskCaller', 'GetMessage', []), 'hi', "the caller's Completion is read while the method waits")
  t.equal(await c.invoke('AskCaller', 'AskBack', []), 'nested', 'another invocation can even run while the method waits')
  t.equal(await c.invoke('Echo', 'after'), 'after')
})
