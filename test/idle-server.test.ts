import { mock } from 'node:test'
import t, { type Test } from 'tap'
import { z } from 'zod'
import { defineHub } from '../lib/index.js'
import { startApp } from './helpers/app.js'
import { connectCell, type Cell } from './helpers/matrix.js'
import { handshakeRequest, invocation, negotiateRaw, rawConnect, type RawClient } from './helpers/raw.js'

/**
 * A server that sat idle before its first connection. Date is mocked (only
 * Date: timers stay real, so the heartbeat runs as in production) and moved
 * on by hand. Client timeout 30 s and negotiation expiry 15 s are the
 * defaults; the first test shortens keep-alive to 5 s so that a keep-alive
 * period fits in the life of an unused negotiation.
 */
const IDLE = 40_000
const DEFAULT_KEEP_ALIVE = 15_000
const SHORT_KEEP_ALIVE = 5_000

const hub = defineHub({
  methods: {
    Echo: { args: [z.string()], handler: (_hub, text) => text }
  }
})

function mockDate (t: Test): void {
  mock.timers.enable({ apis: ['Date'], now: Date.now() })
  t.teardown(() => { mock.timers.reset() })
}

/**
 * Waits until the heartbeat has ticked at least once since the clock moved:
 * it pings `witness`, an idle connection whose last write is a keep-alive
 * interval old. (Had the tick timed `witness` out instead, the read fails.)
 */
async function heartbeatPassed (witness: RawClient): Promise<void> {
  const record = await witness.next()
  if (record.type !== 6) throw new Error(`expected a ping, got ${JSON.stringify(record)}`)
}

async function witnessConnection (t: Test, baseUrl: string, wsUrl: string): Promise<RawClient> {
  const { body } = await negotiateRaw(`${baseUrl}/hub`)
  return rawConnect(t, `${wsUrl}/hub?id=${String(body.connectionToken)}`, { handshake: true })
}

t.test('idle for 40 s, then negotiate + connect + a keep-alive period: the connection stays open and the second token still works', async (t) => {
  mockDate(t)
  const { baseUrl, wsUrl } = await startApp(t, (app) => { app.mapHub('/hub', hub, { keepAliveInterval: SHORT_KEEP_ALIVE }) })
  mock.timers.tick(IDLE)

  const first = await witnessConnection(t, baseUrl, wsUrl)
  const { body: second } = await negotiateRaw(`${baseUrl}/hub`)
  mock.timers.tick(SHORT_KEEP_ALIVE)
  await heartbeatPassed(first)
  t.notOk(first.isClosed, 'the first connection was not timed out')

  const late = await rawConnect(t, `${wsUrl}/hub?id=${String(second.connectionToken)}`)
  late.sendText(handshakeRequest())
  t.equal(await late.nextText(), '{}', 'the second negotiation is accepted: no 404')
  first.send(invocation('Echo', ['still here'], '1'))
  let answer = await first.next()
  while (answer.type === 6) answer = await first.next()
  t.same(answer, { type: 3, invocationId: '1', result: 'still here' }, 'the first connection still answers')
})

t.test('started and left idle, then the official client connects over WebSockets and long polling: both work', async (t) => {
  mockDate(t)
  const { baseUrl, wsUrl } = await startApp(t, (app) => { app.mapHub('/hub', hub) })
  mock.timers.tick(IDLE)

  const cells: Cell[] = [
    { transport: 'WebSockets', protocol: 'json', name: 'WebSockets/json' },
    { transport: 'LongPolling', protocol: 'json', name: 'LongPolling/json' }
  ]
  const clients = await Promise.all(cells.map((cell) => connectCell(t, `${baseUrl}/hub`, cell)))
  const witness = await witnessConnection(t, baseUrl, wsUrl)
  mock.timers.tick(DEFAULT_KEEP_ALIVE)
  await heartbeatPassed(witness)

  for (const [i, client] of clients.entries()) {
    t.equal(client.state, 'Connected', `${cells[i]!.name} is still connected after a heartbeat`)
    t.equal(await client.invoke('Echo', cells[i]!.name), cells[i]!.name, `${cells[i]!.name} still works`)
  }
})
