import t from 'tap'
import { z } from 'zod'
import { defineHub, HubError } from '../../lib/index.js'
import { startApp } from '../helpers/app.js'
import { connect } from '../helpers/clients.js'

const hub = defineHub({
  methods: {
    Add: { args: [z.number(), z.number()], returns: z.number(), handler: (_hub, a, b) => a + b },
    AddAsync: { args: [z.number(), z.number()], async handler (_hub, a, b) { await Promise.resolve(); return a + b } },
    Echo: { args: [z.string()], handler: (_hub, s) => s },
    Nothing: { args: [], handler () {} },
    Fail: { args: [], handler () { throw new HubError('visible to the caller') } },
    Crash: { args: [], handler () { throw new Error('secret internals') } },
    CrashAsync: { args: [], async handler () { throw new Error('secret internals') } },
    Typed: { args: [z.object({ name: z.string().min(2) })], handler: (_hub, o) => o.name }
  }
})

t.test('invoke returns results, void results are null', async (t) => {
  const { baseUrl } = await startApp(t, (app) => { app.mapHub('/hub', hub) })
  const c = await connect(t, `${baseUrl}/hub`)
  t.equal(await c.invoke('Add', 1, 2), 3)
  t.equal(await c.invoke('add', 2, 2), 4, 'method names match case-insensitively')
  t.equal(await c.invoke('AddAsync', 5, 6), 11)
  t.equal(await c.invoke('Echo', 'héllo ✓'), 'héllo ✓')
  t.equal(await c.invoke('Nothing'), null)
})

t.test('errors', async (t) => {
  const { baseUrl } = await startApp(t, (app) => { app.mapHub('/hub', hub) })
  const c = await connect(t, `${baseUrl}/hub`)
  await t.rejects(c.invoke('Fail'), { message: "An unexpected error occurred invoking 'Fail' on the server. HubException: visible to the caller" })
  await t.rejects(c.invoke('Crash'), { message: "An unexpected error occurred invoking 'Crash' on the server." })
  await t.rejects(c.invoke('CrashAsync'), { message: "An unexpected error occurred invoking 'CrashAsync' on the server." })
  await t.rejects(c.invoke('Missing'), { message: "Failed to invoke 'Missing' due to an error on the server. HubException: Method does not exist." })
  await t.rejects(c.invoke('Add', 1), { message: "Failed to invoke 'Add' due to an error on the server." })
  await t.rejects(c.invoke('Add', 1, 'x'), /Failed to invoke 'Add' due to an error on the server\. InvalidDataException: Error binding arguments\. Argument 1: Invalid input: expected number, received string/)
  await t.rejects(c.invoke('Typed', { name: 'x' }), /Argument 0: name: Too small/)
  t.equal(await c.invoke('Typed', { name: 'xy' }), 'xy', 'the connection still works after errors')
})
