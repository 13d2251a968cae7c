import t from 'tap'
import { z } from 'zod'
import { defineHub, HubError, type InvocationResultEvent } from '../../lib/index.js'
import { startApp } from '../helpers/app.js'
import { connect, signalR } from '../helpers/clients.js'

t.test('authorize per hub and per method', async (t) => {
  const hub = defineHub({
    authorize: (hub) => hub.request.headers['x-role'] !== undefined,
    methods: {
      Open: { args: [], handler: () => 'open' },
      Admin: { args: [], authorize: (hub) => hub.request.headers['x-role'] === 'admin', handler: () => 'secret' },
      Feed: {
        args: [],
        stream: true,
        authorize: (hub) => hub.request.headers['x-role'] === 'admin',
        async * handler () { yield 1 }
      }
    }
  })
  const { baseUrl } = await startApp(t, (app) => { app.mapHub('/hub', hub) })
  const user = await connect(t, `${baseUrl}/hub`, { headers: { 'x-role': 'user' } })
  const admin = await connect(t, `${baseUrl}/hub`, { headers: { 'x-role': 'admin' } })
  const nobody = await connect(t, `${baseUrl}/hub`)

  t.equal(await user.invoke('Open'), 'open')
  await t.rejects(user.invoke('Admin'), { message: "Failed to invoke 'Admin' because user is unauthorized" })
  t.equal(await admin.invoke('Admin'), 'secret')
  await t.rejects(nobody.invoke('Open'), { message: "Failed to invoke 'Open' because user is unauthorized" }, 'the hub-level check applies to every method')
  const streamError = await new Promise<Error>((resolve) => {
    user.stream('Feed').subscribe({ next: () => {}, complete: () => { resolve(new Error('completed')) }, error: resolve })
  })
  t.equal(streamError.message, "Failed to invoke 'Feed' because user is unauthorized")
  t.equal(await user.invoke('Open'), 'open', 'a refusal does not close the connection or hold a slot')
})

t.test('hooks around invocations, connect and disconnect, plugin-wide and per hub', async (t) => {
  const order: string[] = []
  const after: InvocationResultEvent[] = []
  let disconnected!: () => void
  const gone = new Promise<void>((resolve) => { disconnected = resolve })
  const hub = defineHub({
    hooks: {
      beforeInvocation: (e) => {
        order.push(`hub before ${e.method}`)
        if (e.method === 'Echo' && e.args[0] === 'forbidden') throw new HubError('not that word')
      },
      afterInvocation: (e) => { order.push(`hub after ${e.method}`); after.push(e) },
      onConnect: (hub) => { order.push(`hub connect ${typeof hub.connectionId}`) },
      onDisconnect: (_hub, error) => { order.push(`hub disconnect ${String(error)}`); disconnected() }
    },
    methods: {
      Echo: { args: [z.string()], handler: (_h, s) => { order.push('handler'); return s } },
      Boom: { args: [], handler () { throw new Error('boom') } },
      Count: { args: [z.number()], stream: true, async * handler (_h, n) { for (let i = 0; i < n; i++) yield i } }
    },
    onConnected () { order.push('onConnected') }
  })
  const { app, baseUrl } = await startApp(t, (app) => {
    app.signalr.addHook('beforeInvocation', (e) => { order.push(`plugin before ${e.method}`) })
    app.signalr.addHook('onConnect', () => { order.push('plugin connect') })
    app.mapHub('/hub', hub)
  })
  t.throws(() => { app.signalr.addHook('nope' as 'onConnect', () => {}) }, /unknown hook 'nope'/)
  const c = await connect(t, `${baseUrl}/hub`)
  t.same(order.splice(0), ['plugin connect', 'hub connect string', 'onConnected'])

  t.equal(await c.invoke('Echo', 'hi'), 'hi')
  t.same(order.splice(0), ['plugin before Echo', 'hub before Echo', 'handler', 'hub after Echo'])
  t.equal(after[0]!.result, 'hi')
  t.ok(after[0]!.durationMs >= 0)

  await t.rejects(c.invoke('Echo', 'forbidden'), { message: "An unexpected error occurred invoking 'Echo' on the server. HubException: not that word" })
  t.notOk(order.includes('handler'), 'a throwing beforeInvocation stops the call')
  order.length = 0

  await t.rejects(c.invoke('Boom'), /An unexpected error occurred invoking 'Boom'/)
  t.equal((after.at(-1)!.error as Error).message, 'boom', 'afterInvocation sees the error')

  const items: unknown[] = []
  await new Promise<void>((resolve, reject) => { c.stream('Count', 3).subscribe({ next: (v) => { items.push(v) }, complete: resolve, error: reject }) })
  t.same(items, [0, 1, 2], 'streams run under hooks too')
  t.equal(after.at(-1)!.method, 'Count')

  await c.stop()
  await gone
  t.equal(order.at(-1), 'hub disconnect undefined')
  void signalR
})
