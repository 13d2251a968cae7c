import diagnostics from 'node:diagnostics_channel'
import { EventEmitter, once } from 'node:events'
import t from 'tap'
import { z } from 'zod'
import type { HubConnection } from '../../lib/connection/connection.js'
import { defineHub, type Hub } from '../../lib/index.js'
import type { HttpTransportBase } from '../../lib/transports/http-inbound.js'
import { startApp } from '../helpers/app.js'
import { connectCell, type Cell } from '../helpers/matrix.js'

/**
 * The official client over long polling and SSE sends one POST at a time. When
 * its invocations are slow the connection pauses and the POST waits for its
 * answer: nothing may be lost, reordered or refused.
 *
 * Pausing is observed on the plugin's diagnostics channel (lib/diagnostics.ts).
 */
const pauses = new EventEmitter()
let pauseCount = 0
const onPause = (): void => {
  pauseCount++
  pauses.emit('paused')
}
diagnostics.subscribe('fastify-signalr.http.inbound.pause', onPause)
t.teardown(() => { diagnostics.unsubscribe('fastify-signalr.http.inbound.pause', onPause) })

const COUNT = 200
/** A few KB per message, so the client's batches make sizeable POST bodies. */
const PAYLOAD = 'p'.repeat(4000)

function connectionOf (hub: Hub): HubConnection {
  return (hub as unknown as { connection: HubConnection }).connection
}

const cells: Cell[] = [
  { transport: 'LongPolling', protocol: 'json', name: 'LongPolling/json' },
  { transport: 'LongPolling', protocol: 'messagepack', name: 'LongPolling/messagepack' },
  { transport: 'ServerSentEvents', protocol: 'json', name: 'ServerSentEvents/json' }
]

for (const cell of cells) {
  t.test(`${cell.name}: slow invocations pause the connection and the official client loses nothing`, async (t) => {
    const received: number[] = []
    let peakWaiting = 0
    const hub = defineHub({
      methods: {
        Slow: {
          args: [z.number(), z.string()],
          async handler (hub, n) {
            // The first call holds the only slot until the next message has paused the connection.
            if (n === 0) await once(pauses, 'paused')
            else await new Promise((resolve) => setImmediate(resolve))
            received.push(n)
            const inbound = (connectionOf(hub).transport as unknown as HttpTransportBase).inbound
            peakWaiting = Math.max(peakWaiting, inbound.waiting)
          }
        },
        Received: { args: [], handler: () => received }
      }
    })
    const { baseUrl } = await startApp(t, (app) => { app.mapHub('/hub', hub) })
    const c = await connectCell(t, `${baseUrl}/hub`, cell)
    const sends: Array<Promise<void>> = []
    for (let i = 0; i < COUNT; i++) sends.push(c.send('Slow', i, PAYLOAD))
    await Promise.all(sends)
    t.same(await c.invoke('Received'), Array.from({ length: COUNT }, (_, i) => i), 'every message once, in order')
    // Its one POST may wait, unread, for a paused connection to resume; never a second one.
    t.ok(peakWaiting <= 1, `the official client never had two POSTs waiting (peak ${peakWaiting})`)
    t.equal(c.state, 'Connected')
  })
}

t.test('long polling: reading is paused while onConnected runs; messages sent after start() all run, in order', async (t) => {
  const received: number[] = []
  let pausedDuringOnConnected = false
  const hub = defineHub({
    methods: { Push: { args: [z.number()], handler (_hub, n) { received.push(n) } }, Received: { args: [], handler: () => received } },
    async onConnected () {
      pausedDuringOnConnected = pauseCount > 0
      await new Promise((resolve) => setImmediate(resolve))
    }
  })
  const { baseUrl } = await startApp(t, (app) => { app.mapHub('/hub', hub) })
  pauseCount = 0
  const c = await connectCell(t, `${baseUrl}/hub`, { transport: 'LongPolling', protocol: 'json', name: 'LongPolling/json' })
  const sends: Array<Promise<void>> = []
  for (let i = 0; i < 50; i++) sends.push(c.send('Push', i))
  await Promise.all(sends)
  t.ok(pausedDuringOnConnected, 'the transport was paused when onConnected started')
  t.same(await c.invoke('Received'), Array.from({ length: 50 }, (_, i) => i))
})

for (const cell of cells.filter((c) => c.protocol === 'json')) {
  t.test(`${cell.name}: a small message sent while a long invocation holds the slot is answered at once, and runs after it`, async (t) => {
    let release!: () => void
    const gate = new Promise<void>((resolve) => { release = resolve })
    const order: string[] = []
    const hub = defineHub({
      methods: {
        Long: { args: [], async handler () { await gate; order.push('long') } },
        Push: { args: [z.number()], handler (_hub, n) { order.push(`push ${n}`) } },
        Order: { args: [], handler: () => order }
      }
    })
    const { baseUrl } = await startApp(t, (app) => { app.mapHub('/hub', hub) })
    const c = await connectCell(t, `${baseUrl}/hub`, cell)
    const long = c.invoke('Long')
    pauseCount = 0
    // The connection pauses (no slot for Push) but keeps the small POST within its allowance.
    await c.send('Push', 1)
    t.equal(pauseCount, 1, 'the connection paused for it')
    t.same(order, [], 'the long invocation still runs')
    release()
    await long
    t.same(await c.invoke('Order'), ['long', 'push 1'])
  })
}
