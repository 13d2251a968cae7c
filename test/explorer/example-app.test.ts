/** The example app serves the explorer at /signalr, to this machine only. */
import t from 'tap'
import { build } from '../../example-app/app.js'

t.test('the example app turns the explorer on, loopback only', async (t) => {
  const app = await build()
  t.teardown(() => app.close())
  const local = await app.inject({ url: '/signalr', remoteAddress: '127.0.0.1' })
  t.equal(local.statusCode, 200)
  t.match(local.body, '<title>SignalR explorer</title>')
  const hubs = (await app.inject({ url: '/signalr/api/hubs', remoteAddress: '::1' })).json()
  t.same(hubs.hubs.map((h: { name: string, path: string }) => [h.name, h.path]), [['chat', '/chathub']])
  t.equal((await app.inject({ url: '/signalr', remoteAddress: '192.0.2.10' })).statusCode, 403)
})
