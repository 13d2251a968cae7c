// Requests that arrive while the app is closing. Fastify answers them itself
// unless `return503OnClosing: false`; then the hub routes must refuse new
// connections while the open ones are being shut down.
import t from 'tap'
import { defineHub } from '../../lib/index.js'
import { startApp } from '../helpers/app.js'
import { connect } from '../helpers/clients.js'
import { deferred } from '../helpers/deferred.js'
import { upgradeStatus } from '../helpers/raw.js'

t.test('while a slow onDisconnected holds the shutdown, new connections get 503 Server is shutting down', async (t) => {
  const disconnecting = deferred()
  const release = deferred()
  const hub = defineHub({
    methods: { Ping: { args: [], handler: () => 'pong' } },
    async onDisconnected () {
      disconnecting.resolve()
      await release.promise
    }
  })
  const { app, baseUrl, wsUrl } = await startApp(t, (app) => { app.mapHub('/hub', hub) }, {}, { return503OnClosing: false })
  const client = await connect(t, `${baseUrl}/hub`)
  t.equal(await client.invoke('Ping'), 'pong')

  const closing = app.close()
  await disconnecting.promise
  const negotiate = await fetch(`${baseUrl}/hub/negotiate?negotiateVersion=1`, { method: 'POST' })
  t.same([negotiate.status, await negotiate.text()], [503, 'Server is shutting down'], 'negotiate is refused')
  const upgrade = await upgradeStatus(`${wsUrl}/hub`)
  t.same(upgrade, { statusCode: 503, body: 'Server is shutting down' }, 'a WebSocket without negotiate is refused too')

  release.resolve()
  await closing
  t.equal(client.state, 'Disconnected', 'the open connection was closed')
})
