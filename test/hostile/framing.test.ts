import t from 'tap'
import WebSocket from 'ws'
import { z } from 'zod'
import { defineHub } from '../../lib/index.js'
import type { HubMessage } from '../../lib/protocol/messages.js'
import { messagePackProtocol } from '../../lib/protocol/messagepack.js'
import type { PendingMemory } from '../../lib/protocol/pending-bytes.js'
import { startApp } from '../helpers/app.js'
import { handshakeRequest, invocation, rawConnect, RS } from '../helpers/raw.js'

/** The server-side connection of each client, by connection id, to read its framing's accounting. */
const live = new Map<string, unknown>()

const hub = defineHub({
  methods: {
    Length: { args: [z.string()], handler: (_hub, s) => s.length },
    WhoAmI: { args: [], handler: (hub) => hub.connectionId }
  },
  onConnected (hub) { live.set(hub.connectionId, hub) },
  onDisconnected (hub) { live.delete(hub.connectionId) }
})

/** The unfinished-record accounting of a connection's reader (internal: the hub context's connection). */
function pendingMemory (connectionId: string): PendingMemory {
  const context = live.get(connectionId) as { connection: { reader: { splitter: { memory: PendingMemory } } } }
  return context.connection.reader.splitter.memory
}

/** Resolves once the server answered a ping sent now: every frame sent before it has been read. */
function roundTrip (ws: WebSocket): Promise<void> {
  return new Promise((resolve) => {
    ws.once('pong', () => { resolve() })
    ws.ping()
  })
}

/** Sends every byte of `bytes` as a WebSocket message of its own. */
function trickle (ws: WebSocket, bytes: Buffer, binary: boolean): void {
  for (let i = 0; i < bytes.length; i++) ws.send(bytes.subarray(i, i + 1), { binary })
}

t.test('records trickled one byte per WebSocket frame hold memory proportional to their bytes', async (t) => {
  const { wsUrl } = await startApp(t, (app) => { app.mapHub('/hub', hub) })
  const clients = 6
  const size = 20_000
  const raws = await Promise.all(Array.from({ length: clients }, () => rawConnect(t, `${wsUrl}/hub`, { handshake: true, ignorePings: true })))
  const ids: string[] = []
  for (const raw of raws) {
    raw.send(invocation('WhoAmI', [], 'who'))
    ids.push((await raw.next()).result as string)
  }
  const record = Buffer.from(JSON.stringify(invocation('Length', ['x'.repeat(size)], 'len')), 'utf8')
  for (const raw of raws) trickle(raw.ws, record, false)
  await Promise.all(raws.map((raw) => roundTrip(raw.ws)))

  let buffered = 0
  let retained = 0
  for (const id of ids) {
    const memory = pendingMemory(id)
    buffered += memory.buffered
    retained += memory.retained
    t.ok(memory.allocations <= Math.ceil(Math.log2(record.length / 256)) + 1,
      `${memory.allocations} allocations for ${record.length} one-byte frames`)
  }
  t.equal(buffered, clients * record.length, 'every byte received is held once')
  t.ok(retained <= 2 * buffered, `${retained} bytes retained for ${buffered} buffered (${(retained / buffered).toFixed(2)} per byte)`)

  for (const raw of raws) raw.sendText(RS)
  for (const raw of raws) t.equal((await raw.next()).result, size, 'the record is whole once its separator arrives')
  t.same(ids.map((id) => pendingMemory(id).retained), Array(clients).fill(0), 'and its buffer is released')
})

t.test('a MessagePack message trickled one byte per frame', async (t) => {
  const { wsUrl } = await startApp(t, (app) => { app.mapHub('/hub', hub) })
  const ws = new WebSocket(`${wsUrl}/hub`)
  t.teardown(() => { ws.terminate() })
  const messages: HubMessage[] = []
  const reader = messagePackProtocol.createReader(null)
  let handshake: string | null = null
  let arrived: (() => void) | null = null
  ws.on('message', (data: Buffer) => {
    if (handshake === null) handshake = data.toString('utf8')
    else reader.read(data, messages)
    arrived?.()
  })
  const next = (): Promise<void> => new Promise((resolve) => { arrived = resolve })
  await new Promise((resolve) => { ws.once('open', resolve) })
  const answered = next()
  ws.send(handshakeRequest('messagepack', 1))
  await answered
  t.equal(handshake, '{}' + RS)

  const size = 20_000
  const arg = 'y'.repeat(size)
  // encode() frames too: the length prefix is part of what is trickled.
  const invocationOf = (id: string, target: string, args: unknown[]): Buffer => messagePackProtocol.encode({
    type: 1, invocationId: id, target, arguments: args
  } as HubMessage)
  const who = next()
  ws.send(invocationOf('who', 'WhoAmI', []))
  await who
  const id = (messages.shift() as { result: string }).result
  const framed = invocationOf('len', 'Length', [arg])
  trickle(ws, framed.subarray(0, framed.length - 1), true)
  await roundTrip(ws)
  const memory = pendingMemory(id)
  t.equal(memory.buffered, framed.length - 1)
  t.ok(memory.retained <= framed.length, `${memory.retained} bytes retained for a ${framed.length}-byte message`)
  const done = next()
  ws.send(framed.subarray(framed.length - 1))
  await done
  t.match(messages.shift(), { type: 3, invocationId: 'len', result: size })
})

t.test('a handshake trickled one byte per frame completes', async (t) => {
  const { wsUrl } = await startApp(t, (app) => { app.mapHub('/hub', hub) })
  const raw = await rawConnect(t, `${wsUrl}/hub`, { ignorePings: true })
  const request = Buffer.from(JSON.stringify({ protocol: 'json', version: 1, padding: 'p'.repeat(5000) }) + RS)
  trickle(raw.ws, request, false)
  t.equal(await raw.nextText(), '{}')
  raw.send(invocation('Length', ['abc'], '1'))
  t.equal((await raw.next()).result, 3)
})
