import t from 'tap'
import { z } from 'zod'
import { MessagePackHubProtocol } from '@microsoft/signalr-protocol-msgpack'
import { defineHub } from '../../lib/index.js'
import { startApp } from '../helpers/app.js'
import { signalR } from '../helpers/clients.js'

const hub = defineHub({
  methods: {
    Echo: { args: [z.any()], handler: (h, v) => v },
    Nothing: { args: [], handler () {} },
    Bytes: { args: [], handler: () => new Uint8Array([1, 2, 3]) },
    When: { args: [], handler: () => new Date(1700000000123) },
    Count: { args: [z.number()], stream: true, async * handler (h, n) { for (let i = 0; i < n; i++) yield i } },
    Bcast: { args: [z.string()], async handler (h, s) { await h.clients.all.send('msg', s, new Uint8Array([9])) } }
  }
})
t.test('msgpack', async (t) => {
  const { baseUrl } = await startApp(t, (app) => { app.mapHub('/hub', hub) })
  const c = new signalR.HubConnectionBuilder().withUrl(`${baseUrl}/hub`, { transport: signalR.HttpTransportType.WebSockets })
    .withHubProtocol(new MessagePackHubProtocol()).configureLogging(signalR.LogLevel.None).build()
  const j = new signalR.HubConnectionBuilder().withUrl(`${baseUrl}/hub`, { transport: signalR.HttpTransportType.WebSockets })
    .configureLogging(signalR.LogLevel.None).build()
  t.teardown(() => c.stop()); t.teardown(() => j.stop())
  await c.start(); await j.start()
  t.same(await c.invoke('Echo', { a: [1, 'x', null] }), { a: [1, 'x', null] })
  t.equal(await c.invoke('Nothing'), null)
  t.same(Array.from(await c.invoke('Bytes') as Uint8Array), [1, 2, 3])
  t.equal((await c.invoke('When') as Date).getTime(), 1700000000123)
  t.equal(await j.invoke('Bytes'), 'AQID')
  const items: number[] = []
  await new Promise<void>((resolve, reject) => c.stream('Count', 3).subscribe({ next: (v) => items.push(v as number), complete: resolve, error: reject }))
  t.same(items, [0, 1, 2])
  const p1 = new Promise((resolve) => c.on('msg', (...a) => resolve(a)))
  const p2 = new Promise((resolve) => j.on('msg', (...a) => resolve(a)))
  await j.invoke('Bcast', 'hi')
  const [a1, a2] = await Promise.all([p1, p2]) as unknown[][]
  t.equal(a1[0], 'hi'); t.same(Array.from(a1[1] as Uint8Array), [9]); t.same(a2, ['hi', 'CQ=='])
})
