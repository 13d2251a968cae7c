import { Writable } from 'node:stream'
import type { FastifyInstance } from 'fastify'
import t, { type Test } from 'tap'
import type WebSocket from 'ws'
import { z } from 'zod'
import { defineHub, type SignalRPluginOptions } from '../../lib/index.js'
import { fragmentLimit } from '../../lib/transports/websocket-upgrade.js'
import { startApp } from '../helpers/app.js'
import { invocation, rawConnect, RS, type RawClient } from '../helpers/raw.js'

const hub = defineHub({
  methods: {
    Add: { args: [z.number(), z.number()], handler: (_hub, a, b) => a + b }
  }
})

interface LogLine {
  level: number
  msg?: string
  [key: string]: unknown
}

/** An app whose logger (level debug) writes into `lines`. */
async function startLogged (t: Test, options: SignalRPluginOptions = {}, setup?: (app: FastifyInstance) => void) {
  const lines: LogLine[] = []
  const stream = new Writable({
    write (chunk: Buffer, _encoding, done) {
      for (const line of chunk.toString('utf8').split('\n')) if (line !== '') lines.push(JSON.parse(line) as LogLine)
      done()
    }
  })
  const app = await startApp(t, (app) => {
    app.mapHub('/hub', hub)
    setup?.(app)
  }, options, { logger: { level: 'debug', stream } })
  return { ...app, lines }
}

/** Warnings and errors: what a hostile client must not be able to produce. */
function loud (lines: LogLine[]): LogLine[] {
  return lines.filter((line) => line.level >= 40)
}

async function add (raw: RawClient, id: string): Promise<unknown> {
  raw.send(invocation('Add', [40, 2], id))
  return (await raw.next()).result
}

/** Sends `text` as one WebSocket message cut into `count` fragments (the last one carries FIN). */
function sendFragmented (ws: WebSocket, text: string, count: number): void {
  const bytes = Buffer.from(text, 'utf8')
  const size = Math.ceil(bytes.length / count)
  for (let i = 0; i < count; i++) {
    const piece = bytes.subarray(Math.min(i * size, bytes.length), Math.min((i + 1) * size, bytes.length))
    ws.send(piece, { binary: false, fin: i === count - 1 })
  }
}

t.test('fragment limits', async (t) => {
  t.equal(fragmentLimit(1024 * 1024), 256, 'the default 1 MiB frames: 256 fragments of 4 KiB')
  t.equal(fragmentLimit(10 * 1024 * 1024 * 4), 10 * 1024, 'a hub with 10 MiB messages: a payload-sized message in 4 KiB fragments')
  t.equal(fragmentLimit(1000), 64, 'never below 64')
  t.equal(fragmentLimit(0), 16 * 1024, 'unlimited payload keeps ws\'s default')
})

t.test('a message in more fragments than allowed closes that client only', async (t) => {
  const { wsUrl, lines } = await startLogged(t)
  const bystander = await rawConnect(t, `${wsUrl}/hub`, { handshake: true, ignorePings: true })
  const fragmenting = await rawConnect(t, `${wsUrl}/hub`, { handshake: true, ignorePings: true })
  const hostile = await rawConnect(t, `${wsUrl}/hub`, { handshake: true, ignorePings: true })

  // The default limit (32 KiB messages, 1 MiB frames) allows 256 fragments a message.
  sendFragmented(fragmenting.ws, JSON.stringify(invocation('Add', [40, 2], 'f')) + RS, 40)
  t.equal((await fragmenting.next()).result, 42, 'a message in a few fragments is served')

  const record = JSON.stringify(invocation('Add', [1, 1], 'h')) + ' '.repeat(300) + RS
  sendFragmented(hostile.ws, record, record.length)
  const closed = await hostile.closed
  t.equal(closed.code, 1008, 'ws closes with Policy Violation')

  t.equal(await add(bystander, 'b'), 42, 'another client on the same server is unaffected')
  t.equal(await add(fragmenting, 'f2'), 42)
  t.same(loud(lines), [], 'no warning or error in the log')
  t.equal(lines.filter((line) => line.msg === 'websocket protocol error from the client').length, 1, 'one debug line')
})

t.test('text frames that are not UTF-8: SignalR\'s Close, then one debug line whatever the number of frames', async (t) => {
  const { wsUrl, lines } = await startLogged(t, { enableDetailedErrors: true })
  const bystander = await rawConnect(t, `${wsUrl}/hub`, { handshake: true, ignorePings: true })
  const hostile = await rawConnect(t, `${wsUrl}/hub`, { handshake: true, ignorePings: true })
  const bad = Buffer.from([0x7b, 0xff, 0xfe, 0x7d, 0x1e]) // {, two bytes that never occur in UTF-8, }, RS
  for (let i = 0; i < 500; i++) hostile.ws.send(bad, { binary: false })

  t.same(await hostile.next(), {
    type: 7,
    error: 'Connection closed with an error. InvalidDataException: The record is not valid UTF-8.',
    allowReconnect: true
  }, 'a Close message first')
  // The server ends TCP once it read our close frame, which follows every bad frame.
  t.equal((await hostile.closed).code, 1000, 'then the WebSocket close')

  t.same(loud(lines), [], 'no warning or error in the log')
  // The protocol error once, and the end of the connection (logged for every connection) once.
  const mentions = lines.filter((line) => JSON.stringify(line).includes('UTF-8'))
  t.same(mentions.map((line) => [line.level, line.msg]), [[20, 'protocol error'], [20, 'hub connection closed']],
    'two debug lines for 500 bad frames, not one per frame')
  t.equal(await add(bystander, 'b'), 42, 'another client is unaffected')
})

t.test('a handshake that is not UTF-8 is answered with the handshake error', async (t) => {
  const { wsUrl, lines } = await startLogged(t)
  const raw = await rawConnect(t, `${wsUrl}/hub`)
  raw.ws.send(Buffer.concat([Buffer.from('{"protocol":"json\xff', 'latin1'), Buffer.from(`","version":1}${RS}`)]), { binary: false })
  t.same(await raw.next(), { error: 'An unexpected error occurred during connection handshake.' })
  await raw.closed
  t.same(loud(lines), [])
})
