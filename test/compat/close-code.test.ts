/**
 * Issue 9, item 6: ASP.NET answers every client-initiated WebSocket close with
 * 1000. @aspnet/signalr 1.0 closes without a status code and reports any
 * answer but 1000 as an error, so echoing the client's code (1005) made each
 * of its stop() calls end in onclose(Error).
 */
import t from 'tap'
import { z } from 'zod'
import * as signalR10 from 'signalr-1.0'
import { defineHub } from '../../lib/index.js'
import { startApp } from '../helpers/app.js'
import { invocation, rawConnect } from '../helpers/raw.js'
import { installBrowserGlobals } from './browser-globals.js'

installBrowserGlobals()

const hub = defineHub({
  methods: {
    Add: { args: [z.number(), z.number()], handler: (_hub, a, b) => a + b }
  }
})

const { baseUrl, wsUrl } = await startApp(t, (app) => { app.mapHub('/hub', hub) })

t.test('a client close without a status code is answered with 1000', async (t) => {
  const raw = await rawConnect(t, `${wsUrl}/hub`, { handshake: true })
  raw.send(invocation('Add', [1, 2], '1'))
  t.same(await raw.next(), { type: 3, invocationId: '1', result: 3 })
  raw.ws.close()
  const { code } = await raw.closed
  t.equal(code, 1000)
})

t.test('a client close with another code is answered with 1000 too', async (t) => {
  const raw = await rawConnect(t, `${wsUrl}/hub`, { handshake: true })
  raw.ws.close(1001, 'going away')
  const { code } = await raw.closed
  t.equal(code, 1000)
})

t.test('@aspnet/signalr 1.0: stop() ends with onclose and no error', async (t) => {
  const connection = new signalR10.HubConnectionBuilder()
    .withUrl(`${baseUrl}/hub`, { transport: signalR10.HttpTransportType.WebSockets })
    .configureLogging(signalR10.LogLevel.None)
    .build()
  const closed = new Promise<Error | undefined>((resolve) => { connection.onclose((error) => { resolve(error) }) })
  await connection.start()
  t.equal(await connection.invoke('Add', 40, 2), 42)
  await connection.stop()
  t.equal(await closed, undefined, 'onclose reports no error')
})
