import diagnostics from 'node:diagnostics_channel'
import { EventEmitter, once } from 'node:events'
import type { Socket } from 'node:net'
import { Writable } from 'node:stream'
import v8 from 'node:v8'
import { runInNewContext } from 'node:vm'
import t, { type Test } from 'tap'
import WebSocket from 'ws'
import { z } from 'zod'
import { defineHub } from '../../lib/index.js'
import type { HubConnection } from '../../lib/connection/connection.js'
import { serverSockets, startApp } from '../helpers/app.js'
import { deferred } from '../helpers/deferred.js'
import { handshakeRequest, invocation, record, RS } from '../helpers/raw.js'

// Memory is measured after a forced collection, so that what is counted is
// what the server still holds, not garbage V8 has not collected yet.
v8.setFlagsFromString('--expose-gc')
const gc = runInNewContext('gc') as () => void

const MiB = 1024 * 1024
/** One broadcast payload: a 64 KiB string (its JSON record is a few bytes longer). */
const PAYLOAD = 'x'.repeat(64 * 1024)
const RECORD_BYTES = Buffer.byteLength(record({ type: 1, target: 'Blob', arguments: [99999, PAYLOAD] }))
/** Messages broadcast per run: over 60 MB to every receiver. */
const BROADCASTS = Math.ceil(60 * MiB / RECORD_BYTES)
/** How far the broadcaster may run ahead of the reading client, in messages. */
const WINDOW = 4

/**
 * A bare WebSocket hub client that keeps nothing it reads (a client that keeps
 * 60 MB of frames would distort the memory measured in this same process).
 */
class LightClient extends EventEmitter {
  readonly ws: WebSocket
  /** Sequence numbers of `Blob` messages received, checked in order. */
  blobs = 0
  outOfOrder = 0
  closeMessage: Record<string, unknown> | null = null
  private readonly replies = new Map<string, (value: unknown) => void>()
  private buffered = ''

  constructor (url: string) {
    super()
    this.ws = new WebSocket(url)
    this.ws.on('error', () => {})
    this.ws.on('message', (data: Buffer) => { this.onData(data.toString('utf8')) })
  }

  get socket (): Socket {
    return (this.ws as unknown as { _socket: Socket })._socket
  }

  private onData (text: string): void {
    const all = this.buffered + text
    const parts = all.split(RS)
    this.buffered = parts.pop()!
    for (const part of parts) {
      if (part === '{}' || part === '{"type":6}') continue
      const message = JSON.parse(part) as Record<string, unknown>
      if (message.type === 1 && message.target === 'Blob') {
        const [seq, payload] = message.arguments as [number, string]
        if (seq !== this.blobs || payload.length !== PAYLOAD.length) this.outOfOrder++
        this.blobs++
        this.emit('blob')
      } else if (message.type === 3) {
        this.replies.get(message.invocationId as string)?.(message.error ?? message.result)
      } else if (message.type === 7) {
        this.closeMessage = message
      }
    }
  }

  invoke (id: string, target: string, args: unknown[] = []): Promise<unknown> {
    return new Promise((resolve) => {
      this.replies.set(id, resolve)
      this.ws.send(record(invocation(target, args, id)))
    })
  }
}

async function lightConnect (t: Test, url: string): Promise<LightClient & { id: string }> {
  const client = new LightClient(url)
  t.teardown(() => { if (client.ws.readyState !== WebSocket.CLOSED) client.ws.terminate() })
  await once(client.ws, 'open')
  client.ws.send(handshakeRequest())
  const id = await client.invoke('whoami', 'WhoAmI') as string
  return Object.assign(client, { id })
}

/** The server's socket for a client socket (by the client's port). */
function serverSocketOf (sockets: Map<WebSocket, number>, client: LightClient): WebSocket | undefined {
  const port = client.socket.localPort
  for (const [socket, remotePort] of sockets) if (remotePort === port) return socket
  return undefined
}

function logCapture (): { stream: Writable, lines: Array<Record<string, unknown>> } {
  const lines: Array<Record<string, unknown>> = []
  const stream = new Writable({
    write (chunk: Buffer, _encoding, done) {
      for (const line of chunk.toString('utf8').split('\n')) if (line !== '') lines.push(JSON.parse(line) as Record<string, unknown>)
      done()
    }
  })
  return { stream, lines }
}

interface RunResult {
  /** Most bytes ever queued on the server for the slow client. */
  peakQueued: number
  /** Growth of `arrayBuffers` (Buffers) over the baseline, after GC, at its highest. */
  peakArrayBuffers: number
  /** Growth of rss over the baseline, after GC, at its highest. */
  peakRss: number
  /** Every `arrayBuffers` growth sample (after GC). */
  samples: number[]
  /** Bytes broadcast to every receiver. */
  broadcastBytes: number
  /** Messages broadcast before the slow client was closed (all of them if it never was). */
  sentBeforeDrop: number
  slowDisconnectError: Error | undefined | null
}

/**
 * Broadcasts over 60 MB while one raw client has stopped reading and another
 * reads everything, sampling the slow connection's queue after every send and
 * memory after a GC every 16 messages.
 */
async function slowReaderRun (t: Test, maximumSendBufferSize: number) {
  const disconnected = new Map<string, Error | undefined>()
  const slowGone = deferred<Error | undefined>()
  let slowId = ''
  const hub = defineHub({
    methods: { WhoAmI: { args: [], handler: (h) => h.connectionId } },
    onDisconnected (h, error) {
      disconnected.set(h.connectionId, error)
      if (h.connectionId === slowId) slowGone.resolve(error)
    }
  })
  const logs = logCapture()
  let sockets = new Map<WebSocket, number>()
  const { app, wsUrl } = await startApp(t, (app) => { app.mapHub('/hub', hub); sockets = serverSockets(app) },
    { maximumSendBufferSize }, { logger: { level: 'warn', stream: logs.stream } })
  const slow = await lightConnect(t, `${wsUrl}/hub`)
  slowId = slow.id
  const fast = await lightConnect(t, `${wsUrl}/hub`)
  const slowServerSocket = serverSocketOf(sockets, slow)
  t.ok(slowServerSocket, 'found the slow client\'s socket on the server')
  slow.socket.pause()

  const context = app.signalr.hubContext(hub)
  gc()
  const base = process.memoryUsage()
  const result: RunResult = {
    peakQueued: 0, peakArrayBuffers: 0, peakRss: -Infinity, samples: [], broadcastBytes: 0, sentBeforeDrop: BROADCASTS, slowDisconnectError: null
  }
  let dropped = false
  void slowGone.promise.then(() => { dropped = true })

  for (let i = 0; i < BROADCASTS; i++) {
    // Pace by the reading client only: it must never be the one that falls behind.
    while (i - fast.blobs > WINDOW) await once(fast, 'blob')
    await context.clients.all.send('Blob', i, PAYLOAD)
    result.broadcastBytes += RECORD_BYTES
    if (dropped && result.sentBeforeDrop === BROADCASTS) result.sentBeforeDrop = i
    result.peakQueued = Math.max(result.peakQueued, slowServerSocket!.bufferedAmount)
    if (i % 16 === 0) {
      gc()
      const now = process.memoryUsage()
      result.samples.push(now.arrayBuffers - base.arrayBuffers)
      result.peakArrayBuffers = Math.max(result.peakArrayBuffers, now.arrayBuffers - base.arrayBuffers)
      result.peakRss = Math.max(result.peakRss, now.rss - base.rss)
    }
  }
  while (fast.blobs < BROADCASTS) await once(fast, 'blob')
  if (dropped) result.slowDisconnectError = await slowGone.promise
  return { result, slow, fast, logs, disconnected, app }
}

t.test('a client that stops reading: bounded queue, bounded memory, closed; the reader gets everything', async (t) => {
  const limit = 1 * MiB
  const { result, slow, fast, logs, disconnected } = await slowReaderRun(t, limit)

  t.comment(`broadcast ${BROADCASTS} messages of ${RECORD_BYTES} B = ${(result.broadcastBytes / MiB).toFixed(1)} MiB to each client`)
  t.comment(`maximumSendBufferSize ${limit} B; peak bytes queued for the slow client on the server: ${result.peakQueued} B`)
  t.comment(`slow client closed after ${result.sentBeforeDrop} messages (${(result.sentBeforeDrop * RECORD_BYTES / MiB).toFixed(1)} MiB, the rest sat in kernel socket buffers)`)
  const median = [...result.samples].sort((a, b) => a - b)[result.samples.length >> 1]!
  t.comment(`memory growth after GC over ${result.samples.length} samples: arrayBuffers median ${(median / MiB).toFixed(2)} MiB, ` +
    `peak ${(result.peakArrayBuffers / MiB).toFixed(2)} MiB; rss at most ${(result.peakRss / MiB).toFixed(2)} MiB over its baseline`)

  t.ok(result.broadcastBytes >= 50 * MiB, 'at least 50 MB were broadcast')
  t.ok(result.peakQueued > 0, 'the slow client\'s queue did grow (the measurement sees it)')
  t.ok(result.peakQueued <= limit + RECORD_BYTES + 64, `the queue never exceeded the limit plus one message (${result.peakQueued} B)`)
  t.ok(result.sentBeforeDrop < BROADCASTS, 'the slow client was closed during the run')
  // What the slow connection may hold is the limit (plus one message); the rest is a
  // constant of a few MiB (socket and frame buffers in flight), whatever the volume broadcast.
  t.ok(median < 2 * limit, `typical Buffer growth stays under 2 x the limit (${median} B)`)
  t.ok(result.peakArrayBuffers < 2 * limit + 8 * MiB, `peak Buffer growth stays under 2 x the limit + 8 MiB (${result.peakArrayBuffers} B)`)
  t.ok(result.peakRss < 48 * MiB, `rss grew by less than 48 MiB while ${(result.broadcastBytes / MiB).toFixed(0)} MiB were broadcast`)

  t.type(result.slowDisconnectError, Error, 'onDisconnected of the slow client gets an error')
  t.match(result.slowDisconnectError?.message, /did not read its messages fast enough/)
  const warning = logs.lines.find((l) => l.msg === 'closing a client that does not read its messages fast enough')
  t.ok(warning, 'a warn line names the slow client')
  t.equal(warning?.level, 40)
  t.equal(warning?.connectionId, slow.id)
  t.equal(warning?.limit, limit)

  t.equal(fast.blobs, BROADCASTS, 'the reading client got every message')
  t.equal(fast.outOfOrder, 0, 'in order and intact')
  t.notOk(disconnected.has(fast.id), 'the reading client was not closed')
  t.equal(await fast.invoke('again', 'WhoAmI'), fast.id, 'and it still works')

  // The slow client reads again: what was queued, then the Close, then the end of the socket.
  const closed = once(slow.ws, 'close')
  slow.socket.resume()
  const [code] = await closed as [number]
  // The server waits 5 s (ASP.NET's CloseTimeout) for the client's close frame, then
  // terminates. On a loaded machine the run may reach this point later than that.
  if (code === 1000) {
    t.same(slow.closeMessage, { type: 7, error: 'Connection closed with an error.', allowReconnect: true }, 'a Close error that allows reconnecting')
  } else {
    t.equal(code, 1006, 'or, once the close timeout passed, the socket was terminated')
  }
  t.ok(slow.blobs <= result.sentBeforeDrop + 1, `it got only what was sent before it was closed (${slow.blobs} messages)`)
  t.equal(slow.outOfOrder, 0, 'what it got is in order')
})

t.test('control: with no effective limit the same run does grow memory (the measurement can fail)', async (t) => {
  const { result } = await slowReaderRun(t, 1024 * MiB)
  t.comment(`without a limit: peak queued ${(result.peakQueued / MiB).toFixed(1)} MiB, arrayBuffers +${(result.peakArrayBuffers / MiB).toFixed(1)} MiB`)
  t.equal(result.sentBeforeDrop, BROADCASTS, 'nobody was closed')
  t.ok(result.peakQueued > 8 * MiB, 'the slow client\'s queue grew without bound')
  t.ok(result.peakArrayBuffers > 2 * MiB + 8 * MiB, 'and so did Buffer memory: the bounds above would catch it')
})

/**
 * Tells when a connection starts waiting for its transport to drain (the
 * plugin's diagnostics channel, see lib/diagnostics.ts).
 */
const drainWaits = new EventEmitter()
const onDrainWait = (message: unknown): void => { drainWaits.emit('wait', message) }
diagnostics.subscribe('fastify-signalr.connection.drain-wait', onDrainWait)
t.teardown(() => { diagnostics.unsubscribe('fastify-signalr.connection.drain-wait', onDrainWait) })

const ITEM = 'i'.repeat(32 * 1024)

function producerHub () {
  const state = { pulled: 0, pulledAt: [] as number[], sent: 0, queuedAtSend: [] as number[] }
  const queuedOf = (h: { connection?: HubConnection }): number => (h as unknown as { connection: HubConnection }).connection.transport.bufferedAmount
  const hub = defineHub({
    methods: {
      WhoAmI: { args: [], handler: (h) => h.connectionId },
      Echo: { args: [z.string()], handler: (_h, s) => s },
      Items: {
        args: [z.number().int()],
        stream: true,
        async * handler (h, count) {
          for (let i = 0; i < count; i++) {
            state.pulled++
            // What was still queued for this client when the dispatcher asked for one more item.
            state.pulledAt.push(queuedOf(h as never))
            yield { i, data: ITEM }
          }
        }
      },
      Flood: {
        args: [z.number().int()],
        async handler (h, count) {
          for (let i = 0; i < count; i++) {
            state.queuedAtSend.push(queuedOf(h as never))
            await h.clients.caller.send('Item', i, ITEM)
            state.sent++
          }
          return state.sent
        }
      }
    }
  })
  return { hub, state }
}

t.test('a stream to a client that stops reading waits: the generator is not pulled ahead', async (t) => {
  const { hub, state } = producerHub()
  let sockets = new Map<WebSocket, number>()
  const { wsUrl } = await startApp(t, (app) => { app.mapHub('/hub', hub); sockets = serverSockets(app) })
  const reader = await lightConnect(t, `${wsUrl}/hub`)
  const other = await lightConnect(t, `${wsUrl}/hub`)
  const COUNT = 2000 // 64 MB in 32 KiB items: far more than kernel socket buffers absorb
  let items = 0
  let completed = false
  reader.ws.on('message', (data: Buffer) => {
    const text = data.toString('utf8')
    if (text.includes('"type":2')) items += text.split(RS).filter((r) => r.includes('"type":2')).length
    if (text.includes('"type":3,"invocationId":"stream"')) completed = true
  })

  reader.socket.pause()
  const waiting = once(drainWaits, 'wait')
  reader.ws.send(record({ type: 4, invocationId: 'stream', target: 'Items', arguments: [COUNT] }))
  await waiting
  const pulledWhenBlocked = state.pulled
  const queued = serverSocketOf(sockets, reader)!.bufferedAmount
  // Other traffic goes through the server while the reader stays paused.
  for (let i = 0; i < 20; i++) t.equal(await other.invoke(`e${i}`, 'Echo', [`x${i}`]), `x${i}`)
  t.equal(state.pulled, pulledWhenBlocked, 'not one more item was pulled while the client did not read')
  t.ok(pulledWhenBlocked < COUNT, `the generator stopped at ${pulledWhenBlocked} of ${COUNT} items`)
  t.ok(queued <= 64 * 1024 + ITEM.length + 256, `with ${queued} B queued on the server (applicationMaxBufferSize 64 KiB + one item)`)
  t.comment(`stream: ${pulledWhenBlocked} items (${(pulledWhenBlocked * ITEM.length / MiB).toFixed(1)} MiB) pulled before it waited; ${queued} B queued in the server, the rest in kernel buffers`)

  const allRead = new Promise<void>((resolve) => {
    reader.ws.on('message', () => { if (completed) resolve() })
  })
  reader.socket.resume()
  await allRead
  t.equal(items, COUNT, 'once the client reads again, every item arrives')
  t.equal(state.pulled, COUNT)
  const overfull = state.pulledAt.filter((q) => q > 64 * 1024)
  t.same(overfull, [], 'no item was ever pulled while more than applicationMaxBufferSize was queued')
})

t.test('hub.clients.caller.send awaits while the caller is behind', async (t) => {
  const { hub, state } = producerHub()
  let sockets = new Map<WebSocket, number>()
  const { wsUrl } = await startApp(t, (app) => { app.mapHub('/hub', hub, { maximumParallelInvocationsPerClient: 2 }); sockets = serverSockets(app) })
  const reader = await lightConnect(t, `${wsUrl}/hub`)
  const other = await lightConnect(t, `${wsUrl}/hub`)
  const COUNT = 2000
  let items = 0
  reader.ws.on('message', (data: Buffer) => {
    const text = data.toString('utf8')
    items += text.split(RS).filter((r) => r.includes('"target":"Item"')).length
  })

  reader.socket.pause()
  const waiting = once(drainWaits, 'wait')
  const done = reader.invoke('flood', 'Flood', [COUNT])
  await waiting
  const sentWhenBlocked = state.sent
  for (let i = 0; i < 20; i++) t.equal(await other.invoke(`e${i}`, 'Echo', [`y${i}`]), `y${i}`)
  t.equal(state.sent, sentWhenBlocked, 'the awaiting send did not return while the client did not read')
  t.ok(sentWhenBlocked < COUNT, `the method is held at ${sentWhenBlocked} of ${COUNT} sends`)
  const queued = serverSocketOf(sockets, reader)!.bufferedAmount
  t.ok(queued <= 64 * 1024 + ITEM.length + 256, `${queued} B queued on the server`)
  t.comment(`caller.send: held after ${sentWhenBlocked} sends with ${queued} B queued in the server`)

  reader.socket.resume()
  t.equal(await done, COUNT, 'the method finishes once the client reads')
  t.equal(items, COUNT, 'every message arrived: waiting is not dropping')
  t.same(state.queuedAtSend.filter((q) => q > 64 * 1024), [], 'no send started with more than applicationMaxBufferSize queued')
  t.equal(await reader.invoke('who', 'WhoAmI'), reader.id, 'the caller was not closed')
})
