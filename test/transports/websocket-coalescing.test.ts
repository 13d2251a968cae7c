import { MessagePackHubProtocol } from '@microsoft/signalr-protocol-msgpack'
import t, { type Test } from 'tap'
import WebSocket from 'ws'
import { z } from 'zod'
import { defineHub } from '../../lib/index.js'
import { startApp } from '../helpers/app.js'
import { signalR } from '../helpers/clients.js'
import { connectCell } from '../helpers/matrix.js'
import { handshakeRequest, invocation, rawConnect, RS } from '../helpers/raw.js'

/** What the server-side transport exposes to this test (internals, read only). */
interface TransportInternals {
  pendingBytes: number
  direct: { bytesWritten: number } | null
}

function transportOf (hub: unknown): TransportInternals {
  return (hub as { connection: { transport: TransportInternals } }).connection.transport
}

/**
 * `Burst` sends `count` messages to the caller in one synchronous loop, with a
 * broadcast every `every` messages, all numbered in one sequence. `Big` sends
 * `count` strings of `size` characters. `One` sends a single message and
 * reports what the transport did synchronously.
 */
const hub = defineHub({
  methods: {
    Burst: {
      args: [z.number().int(), z.number().int()],
      handler (hub, count, every) {
        let seq = 0
        for (let i = 0; i < count; i++) {
          if (every > 0 && i % every === 0) void hub.clients.all.send('Item', seq++, 'all')
          void hub.clients.caller.send('Item', seq++, 'caller')
        }
        return seq
      }
    },
    Big: {
      args: [z.number().int(), z.number().int()],
      handler (hub, count, size) {
        for (let i = 0; i < count; i++) void hub.clients.caller.send('Item', i, String(i % 10).repeat(size))
        return count
      }
    },
    Stream: {
      args: [z.number().int()],
      stream: true,
      async * handler (_hub, count) {
        // Each item follows the last within the same turn: they are collected, and waiting for drain flushes them.
        for (let i = 0; i < count; i++) yield i
      }
    },
    SendThenAbort: {
      args: [z.number().int()],
      handler (hub, count) {
        for (let i = 0; i < count; i++) void hub.clients.caller.send('Item', i, 'before close')
        hub.abort()
      }
    },
    One: {
      args: [],
      handler (hub) {
        const transport = transportOf(hub)
        const socket = transport.direct!
        const before = socket.bytesWritten
        void hub.clients.caller.send('Item', 0, 'one')
        const written = socket.bytesWritten - before
        const pendingAfterFirst = transport.pendingBytes
        void hub.clients.caller.send('Item', 1, 'two')
        return { written, pendingAfterFirst, pendingAfterSecond: transport.pendingBytes }
      }
    }
  }
})

async function start (t: Test, options: { applicationMaxBufferSize?: number } = {}) {
  return await startApp(t, (app) => { app.mapHub('/hub', hub, options) })
}

/** Resolves with the first `count` `Item` calls (sequence number and origin). */
function items (connection: signalR.HubConnection, count: number): Promise<Array<[number, string]>> {
  const got: Array<[number, string]> = []
  return new Promise((resolve) => {
    connection.on('Item', (seq: number, origin: string) => {
      got.push([seq, origin])
      if (got.length === count) resolve(got)
    })
  })
}

t.test('official clients receive every coalesced message, in order', async (t) => {
  const { baseUrl } = await start(t)
  const json = await connectCell(t, `${baseUrl}/hub`, { transport: 'WebSockets', protocol: 'json', name: 'json' })
  const msgpack = await connectCell(t, `${baseUrl}/hub`, { transport: 'WebSockets', protocol: 'messagepack', name: 'msgpack' })
  const count = 2000
  const every = 400
  const total = count + count / every

  for (const [caller, other] of [[json, msgpack], [msgpack, json]] as const) {
    const callerItems = items(caller, total)
    const otherItems = items(other, count / every)
    t.equal(await caller.invoke('Burst', count, every), total)
    const got = await callerItems
    t.same(got.map(([seq]) => seq), Array.from({ length: total }, (_, i) => i), 'every message, in order')
    t.equal(got.filter(([, origin]) => origin === 'all').length, count / every, 'broadcasts interleaved')
    // The other client gets only the broadcasts, in order as well.
    t.same((await otherItems).map(([seq]) => seq), got.filter(([, origin]) => origin === 'all').map(([seq]) => seq))
    caller.off('Item')
    other.off('Item')
  }
})

t.test('a stream waiting for drain on collected records is never stuck', async (t) => {
  // A tiny high-water mark: the collected records alone exceed it, so the producer waits on them.
  const { baseUrl } = await start(t, { applicationMaxBufferSize: 256 })
  for (const protocol of ['json', 'messagepack'] as const) {
    const client = await connectCell(t, `${baseUrl}/hub`, { transport: 'WebSockets', protocol, name: protocol })
    const got: number[] = []
    await new Promise<void>((resolve, reject) => {
      client.stream<number>('Stream', 3000).subscribe({ next: (i) => { got.push(i) }, complete: resolve, error: reject })
    })
    t.same(got, Array.from({ length: 3000 }, (_, i) => i), `${protocol}: every item, in order`)
  }
})

const jsonProtocol = new signalR.JsonHubProtocol()
const msgpackProtocol = new MessagePackHubProtocol()

t.test('a burst in one turn arrives in few JSON frames, each a list of whole records', async (t) => {
  const { wsUrl } = await start(t)
  const raw = await rawConnect(t, `${wsUrl}/hub`, { handshake: true, ignorePings: true })
  const before = raw.frames.length
  raw.send(invocation('Burst', [100, 0], 'b'))
  for (let i = 0; i < 100; i++) t.equal((await raw.next()).arguments instanceof Array, true)
  t.equal((await raw.next()).result, 100)
  const frames = raw.frames.slice(before)
  t.comment(`100 messages + completion in ${frames.length} frames`)
  t.ok(frames.length <= 3, `far fewer frames than messages (${frames.length})`)
  t.equal(jsonProtocol.parseMessages(frames[0]!, signalR.NullLogger.instance).length, 1,
    'the first message of the turn went out alone, at once')
  const parsed = frames.map((frame) => jsonProtocol.parseMessages(frame, signalR.NullLogger.instance))
  t.ok(parsed.some((messages) => messages.length >= 50), 'one frame carries many records')
  const seqs = parsed.flat().filter((m) => m.type === signalR.MessageType.Invocation)
    .map((m) => (m as signalR.InvocationMessage).arguments[0])
  t.same(seqs, Array.from({ length: 100 }, (_, i) => i), 'every record parses, in order')
})

t.test('joined frames stay under the byte cap', async (t) => {
  const { wsUrl } = await start(t)
  const raw = await rawConnect(t, `${wsUrl}/hub`, { handshake: true, ignorePings: true })
  const before = raw.frames.length
  raw.send(invocation('Big', [60, 4000], 'big'))
  for (let i = 0; i < 60; i++) t.same((await raw.next()).arguments, [i, String(i % 10).repeat(4000)])
  t.equal((await raw.next()).result, 60)
  const frames = raw.frames.slice(before)
  const sizes = frames.map((frame) => Buffer.byteLength(frame))
  t.comment(`60 records of 4 KB + completion in ${frames.length} frames: ${sizes.join(', ')} bytes`)
  t.ok(sizes.every((size) => size <= 64 * 1024), 'no frame beyond 64 KiB')
  // 240 KB: four full frames and what remains, after the first message that went alone.
  t.ok(frames.length >= 5 && frames.length <= 7, `split into a few capped frames (${frames.length})`)
})

/** A raw MessagePack client: every binary frame it gets, after the handshake. */
async function rawMessagePack (t: Test, url: string): Promise<{ ws: WebSocket, frames: ArrayBuffer[], next: (count: number) => Promise<void> }> {
  const ws = new WebSocket(url)
  t.teardown(() => { ws.terminate() })
  const frames: ArrayBuffer[] = []
  let records = 0
  let waiter: { count: number, resolve: () => void } | null = null
  let handshaken: () => void
  const handshake = new Promise<void>((resolve) => { handshaken = resolve })
  ws.on('message', (data: Buffer, binary: boolean) => {
    if (data.toString('latin1') === `{}${RS}`) {
      handshaken()
      return
    }
    if (!binary) throw new Error('a text frame on a MessagePack connection')
    const frame = data.buffer.slice(data.byteOffset, data.byteOffset + data.length) as ArrayBuffer
    frames.push(frame)
    records += msgpackProtocol.parseMessages(frame, signalR.NullLogger.instance).length
    if (waiter !== null && records >= waiter.count) waiter.resolve()
  })
  await new Promise((resolve) => ws.once('open', resolve))
  ws.send(handshakeRequest('messagepack'))
  await handshake
  const next = (count: number): Promise<void> => records >= count
    ? Promise.resolve()
    : new Promise((resolve) => { waiter = { count, resolve } })
  return { ws, frames, next }
}

t.test('a burst in one turn arrives in few MessagePack frames of length-prefixed messages', async (t) => {
  const { wsUrl } = await start(t)
  const client = await rawMessagePack(t, `${wsUrl}/hub`)
  client.ws.send(msgpackProtocol.writeMessage({
    type: signalR.MessageType.Invocation, invocationId: 'b', target: 'Burst', arguments: [100, 0], headers: {}
  } as signalR.InvocationMessage))
  await client.next(101)
  t.comment(`100 messages + completion in ${client.frames.length} frames`)
  t.ok(client.frames.length <= 3, `far fewer frames than messages (${client.frames.length})`)
  const parsed = client.frames.map((frame) => msgpackProtocol.parseMessages(frame, signalR.NullLogger.instance))
  t.ok(parsed.some((messages) => messages.length >= 50), 'one frame carries many messages')
  const seqs = parsed.flat().filter((m) => m.type === signalR.MessageType.Invocation)
    .map((m) => (m as signalR.InvocationMessage).arguments[0])
  t.same(seqs, Array.from({ length: 100 }, (_, i) => i), 'every message parses, in order')
  const completion = parsed.flat().at(-1) as signalR.CompletionMessage
  t.equal(completion.result, 100, 'the completion comes last')
})

t.test('on an idle connection a message is written at once, in the same tick', async (t) => {
  const { wsUrl } = await start(t)
  const raw = await rawConnect(t, `${wsUrl}/hub`, { handshake: true, ignorePings: true })
  const before = raw.frames.length
  raw.send(invocation('One', [], 'one'))
  t.same((await raw.next()).arguments, [0, 'one'])
  t.same((await raw.next()).arguments, [1, 'two'])
  const report = (await raw.next()).result as { written: number, pendingAfterFirst: number, pendingAfterSecond: number }
  t.ok(report.written > 0, 'the first send reached the socket before send() returned')
  t.equal(report.pendingAfterFirst, 0, 'nothing was held back')
  t.ok(report.pendingAfterSecond > 0, 'a second message in the same turn waits to be joined')
  const frames = raw.frames.slice(before)
  t.equal(frames.length, 2, 'the first message alone, then the rest of the turn in one frame')
  t.equal(frames[0]!.split(RS).length - 1, 1)
})

t.test('records collected before a Close go out first', async (t) => {
  const { wsUrl } = await start(t)
  const raw = await rawConnect(t, `${wsUrl}/hub`, { handshake: true, ignorePings: true })
  raw.send(invocation('SendThenAbort', [50]))
  for (let i = 0; i < 50; i++) t.same((await raw.next()).arguments, [i, 'before close'])
  t.same(await raw.next(), { type: 7 }, 'then the Close message')
  t.equal((await raw.closed).code, 1000)
})
