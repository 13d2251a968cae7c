import t from 'tap'
import { z } from 'zod'
import { clientStream, defineHub, HubError } from '../../lib/index.js'
import { startApp } from '../helpers/app.js'
import { nextMessage, signalR } from '../helpers/clients.js'
import { connectCell, MATRIX } from '../helpers/matrix.js'

const hub = defineHub({
  methods: {
    Add: { args: [z.number(), z.number()], handler: (_h, a, b) => a + b },
    Nothing: { args: [], handler () {} },
    Fail: { args: [], handler () { throw new HubError('nope') } },
    Bytes: { args: [], handler: () => new Uint8Array([1, 2, 3]) },
    Counter: { args: [z.number()], stream: true, async * handler (_h, n) { for (let i = 0; i < n; i++) yield i } },
    Concat: {
      args: [clientStream(z.string())],
      async handler (_h, items) { let s = ''; for await (const i of items) s += i; return s }
    },
    Shout: { args: [z.string()], async handler (h, s) { await h.clients.all.send('shout', s.toUpperCase()) } },
    Ask: { args: [], handler: (h) => h.clients.caller.invoke('answer') }
  }
})

for (const cell of MATRIX) {
  t.test(cell.name, async (t) => {
    const { baseUrl } = await startApp(t, (app) => { app.mapHub('/hub', hub) })
    const c = await connectCell(t, `${baseUrl}/hub`, cell)
    t.equal(await c.invoke('Add', 2, 3), 5, 'invoke result')
    t.equal(await c.invoke('Nothing'), null, 'void result is null')
    await t.rejects(c.invoke('Fail'), { message: "An unexpected error occurred invoking 'Fail' on the server. HubException: nope" })
    const bytes = await c.invoke('Bytes')
    if (cell.protocol === 'json') t.equal(bytes, 'AQID', 'bytes are base64 in JSON')
    else t.same(Array.from(bytes as Uint8Array), [1, 2, 3], 'bytes are bin in MessagePack')

    const items: unknown[] = []
    await new Promise<void>((resolve, reject) => {
      c.stream('Counter', 4).subscribe({ next: (v) => { items.push(v) }, complete: resolve, error: reject })
    })
    t.same(items, [0, 1, 2, 3], 'server-to-client stream')

    const subject = new signalR.Subject<string>()
    const concat = c.invoke('Concat', subject)
    subject.next('a'); subject.next('b'); subject.next('c'); subject.complete()
    t.equal(await concat, 'abc', 'client-to-server stream')

    const shout = nextMessage(c, 'shout')
    await c.send('Shout', 'hey')
    t.same(await shout, ['HEY'], 'server-to-client invocation')

    c.on('answer', () => 42)
    t.equal(await c.invoke('Ask'), 42, 'client result')
  })
}
