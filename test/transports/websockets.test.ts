import type { Socket } from 'node:net'
import type { FastifyInstance } from 'fastify'
import t, { type Test } from 'tap'
import { z } from 'zod'
import { defineHub, HubError, type SignalRPluginOptions } from '../../lib/index.js'
import { startApp } from '../helpers/app.js'
import { closed as clientClosed, connect, signalR } from '../helpers/clients.js'
import {
  completion, frame, handshakeRequest, invocation, record, rawConnect, RS, type RawClient, type RawRecord
} from '../helpers/raw.js'

const CLOSE_WITH_ERROR = '{"type":7,"error":"Connection closed with an error.","allowReconnect":true}'

interface Disconnect { connectionId: string, error: Error | undefined }

/** A fresh hub per app, so the lifecycle records of one test never leak into another. */
function makeHub () {
  const seen: string[] = []
  const disconnects: Disconnect[] = []
  let onDisconnect: ((d: Disconnect) => void) | null = null
  const hub = defineHub({
    methods: {
      Add: { args: [z.number(), z.number()], handler: (_hub, a, b) => a + b },
      Echo: { args: [z.string()], handler: (_hub, s) => s },
      Nothing: { args: [], handler () {} },
      Crash: { args: [], handler () { throw new Error('secret internals') } },
      Refuse: { args: [], handler () { throw new HubError('no') } },
      Record: { args: [z.string()], handler (_hub, s) { seen.push(s) } },
      WhoAmI: { args: [], handler: (hub) => hub.connectionId },
      Broadcast: { args: [z.string()], async handler (hub, s) { await hub.clients.all.send('Notify', s) } },
      Abort: { args: [], handler (hub) { hub.abort() } }
    },
    onDisconnected (hub, error) {
      const d = { connectionId: hub.connectionId, error }
      disconnects.push(d)
      onDisconnect?.(d)
    }
  })
  /** Resolves when `connectionId` has gone through onDisconnected. */
  const disconnected = (connectionId: string): Promise<Disconnect> => {
    const done = disconnects.find((d) => d.connectionId === connectionId)
    if (done !== undefined) return Promise.resolve(done)
    return new Promise((resolve) => {
      const previous = onDisconnect
      onDisconnect = (d) => {
        previous?.(d)
        if (d.connectionId === connectionId) resolve(d)
      }
    })
  }
  return { hub, seen, disconnects, disconnected }
}

async function start (t: Test, options: SignalRPluginOptions = {}, routes?: (app: FastifyInstance, h: ReturnType<typeof makeHub>) => void) {
  const h = makeHub()
  const app = await startApp(t, (app) => {
    app.mapHub('/hub', h.hub)
    routes?.(app, h)
  }, options)
  return { ...app, ...h }
}

/** The official client still gets served: connect, invoke, stop. */
async function officialWorks (t: Test, baseUrl: string, message = 'a new official client is served'): Promise<void> {
  const c = await connect(t, `${baseUrl}/hub`)
  t.equal(await c.invoke('Add', 40, 2), 42, message)
  await c.stop()
}

async function whoAmI (raw: RawClient, id = 'who'): Promise<string> {
  raw.send(invocation('WhoAmI', [], id))
  const answer = await raw.next()
  return answer.result as string
}

// ------------------------------------------------------------------ handshake

t.test('handshake', async (t) => {
  t.test('success is exactly {} RS in its own message', async (t) => {
    const { wsUrl } = await start(t)
    const raw = await rawConnect(t, `${wsUrl}/hub`)
    raw.sendText(handshakeRequest('json', 1))
    t.equal(await raw.nextText(), '{}')
    t.equal(raw.frames[0], '{}' + RS)
    raw.send(invocation('Add', [1, 1], '1'))
    t.same(await raw.next(), { type: 3, invocationId: '1', result: 2 })
  })

  t.test('a handshake split across two messages is put together', async (t) => {
    const { wsUrl } = await start(t)
    const raw = await rawConnect(t, `${wsUrl}/hub`)
    const text = handshakeRequest()
    raw.sendText(text.slice(0, 9))
    raw.sendText(text.slice(9))
    t.equal(await raw.nextText(), '{}')
  })

  const failures: Array<{ name: string, options?: SignalRPluginOptions, send: string | null, error: string }> = [
    { name: 'unknown protocol', send: handshakeRequest('foo', 1), error: "The protocol 'foo' is not supported." },
    { name: 'version too high', send: handshakeRequest('json', 3), error: "The server does not support version 3 of the 'json' protocol." },
    { name: 'malformed JSON', send: '{"protocol":"json",' + RS, error: 'An unexpected error occurred during connection handshake.' },
    { name: 'missing version', send: record({ protocol: 'json' }), error: 'An unexpected error occurred during connection handshake.' },
    { name: 'timeout (nothing sent)', options: { handshakeTimeout: 50 }, send: null, error: 'Handshake was canceled.' },
    {
      name: 'handshake larger than maximumReceiveMessageSize',
      options: { maximumReceiveMessageSize: 1024 },
      send: record({ protocol: 'json', version: 1, padding: 'x'.repeat(2000) }),
      error: 'Handshake was canceled.'
    },
    {
      name: 'unfinished handshake growing past maximumReceiveMessageSize',
      options: { maximumReceiveMessageSize: 1024 },
      send: '{"protocol":"json","version":1,"padding":"' + 'x'.repeat(2000),
      error: 'Handshake was canceled.'
    }
  ]
  for (const { name, options, send, error } of failures) {
    t.test(name, async (t) => {
      const { baseUrl, wsUrl } = await start(t, options)
      const raw = await rawConnect(t, `${wsUrl}/hub`)
      if (send !== null) raw.sendText(send)
      t.equal(await raw.nextText(), JSON.stringify({ error }))
      t.equal(raw.frames[0], JSON.stringify({ error }) + RS, 'the error is the whole message')
      const { code } = await raw.closed
      t.equal(code, 1000, 'then the server closes the socket')
      t.equal(raw.frames.length, 1, 'and sends nothing else')
      await officialWorks(t, baseUrl)
    })
  }

  t.test('the handshake and the first invocation in the same message', async (t) => {
    const { wsUrl } = await start(t)
    const raw = await rawConnect(t, `${wsUrl}/hub`)
    raw.sendText(handshakeRequest() + record(invocation('Add', [3, 4], '1')))
    t.equal(await raw.nextText(), '{}')
    t.same(await raw.next(), { type: 3, invocationId: '1', result: 7 })
  })
})

// ------------------------------------------------------------------ framing

t.test('framing', async (t) => {
  t.test('several records in one message are all processed, in order', async (t) => {
    const { wsUrl } = await start(t)
    const raw = await rawConnect(t, `${wsUrl}/hub`, { handshake: true })
    raw.send(invocation('Add', [1, 2], 'a'), invocation('Echo', ['two'], 'b'), invocation('Add', [5, 5], 'c'))
    t.same(await raw.next(), { type: 3, invocationId: 'a', result: 3 })
    t.same(await raw.next(), { type: 3, invocationId: 'b', result: 'two' })
    t.same(await raw.next(), { type: 3, invocationId: 'c', result: 10 })
  })

  t.test('a record split across two messages', async (t) => {
    const { wsUrl } = await start(t)
    const raw = await rawConnect(t, `${wsUrl}/hub`, { handshake: true })
    const text = record(invocation('Echo', ['split ✓ here'], '1'))
    // Split inside a multi-byte character too: the bytes are joined before decoding.
    const bytes = Buffer.from(text)
    const cut = bytes.indexOf(Buffer.from('✓')) + 1
    raw.ws.send(bytes.subarray(0, cut))
    raw.ws.send(bytes.subarray(cut))
    t.same(await raw.next(), { type: 3, invocationId: '1', result: 'split ✓ here' })
  })

  t.test('the tail of one record and the next record in the same message', async (t) => {
    const { wsUrl } = await start(t)
    const raw = await rawConnect(t, `${wsUrl}/hub`, { handshake: true })
    const text = frame(invocation('Add', [1, 1], '1'), invocation('Add', [2, 2], '2'))
    const cut = text.indexOf(RS) - 5
    raw.sendText(text.slice(0, cut))
    raw.sendText(text.slice(cut))
    t.same(await raw.next(), { type: 3, invocationId: '1', result: 2 })
    t.same(await raw.next(), { type: 3, invocationId: '2', result: 4 })
  })

  t.test('fire-and-forget gets no reply at all, not even on error', async (t) => {
    const { wsUrl, seen } = await start(t)
    const raw = await rawConnect(t, `${wsUrl}/hub`, { handshake: true })
    raw.send(invocation('Missing', []))
    raw.send(invocation('Crash', []))
    raw.send(invocation('Refuse', []))
    raw.send(invocation('Add', [1]))
    raw.send(invocation('Add', [1, 'x']))
    raw.send(invocation('Nothing', []))
    raw.send(invocation('Record', ['ran']))
    // An empty id is no id (ASP.NET): also fire-and-forget.
    raw.send({ invocationId: '', target: 'Missing', arguments: [], type: 1 })
    raw.send(invocation('Add', [1, 2], 'barrier'))
    t.same(await raw.next(), { type: 3, invocationId: 'barrier', result: 3 }, 'the barrier answer is the first record')
    t.same(seen, ['ran'], 'the fire-and-forget invocation did run')
  })

  t.test('server-to-client invocations omit invocationId', async (t) => {
    const { wsUrl } = await start(t)
    const a = await rawConnect(t, `${wsUrl}/hub`, { handshake: true })
    const b = await rawConnect(t, `${wsUrl}/hub`, { handshake: true })
    a.send(invocation('Broadcast', ['hi'], '1'))
    const records = [await a.next(), await a.next()]
    const notify = records.find((r) => r.type === 1)
    t.same(notify, { type: 1, target: 'Notify', arguments: ['hi'] })
    t.notOk(notify !== undefined && 'invocationId' in notify, 'no invocationId key, not even null')
    t.same(records.find((r) => r.type === 3), { type: 3, invocationId: '1', result: null })
    const atB = await b.nextText()
    t.same(JSON.parse(atB), { type: 1, target: 'Notify', arguments: ['hi'] })
    t.notMatch(atB, /invocationId/)
  })

  t.test('a void result is "result":null on the wire', async (t) => {
    const { wsUrl } = await start(t)
    const raw = await rawConnect(t, `${wsUrl}/hub`, { handshake: true })
    raw.send(invocation('Nothing', [], '1'))
    const text = await raw.nextText()
    t.match(text, /"result":null/)
    const parsed = JSON.parse(text) as RawRecord
    t.ok('result' in parsed)
    t.equal(parsed.result, null)
    t.notOk('error' in parsed)
  })

  t.test('an unknown message type is ignored', async (t) => {
    const { wsUrl } = await start(t)
    const raw = await rawConnect(t, `${wsUrl}/hub`, { handshake: true })
    raw.send({ type: 99 }, { type: 42, whatever: [1, 2, 3], invocationId: 'z' })
    raw.send({ type: 99 })
    raw.send(invocation('Add', [2, 2], '1'))
    t.same(await raw.next(), { type: 3, invocationId: '1', result: 4 }, 'the connection goes on')
    t.notOk(raw.isClosed)
  })

  t.test('a ping from the client is accepted silently', async (t) => {
    const { wsUrl } = await start(t)
    const raw = await rawConnect(t, `${wsUrl}/hub`, { handshake: true })
    raw.send({ type: 6 }, invocation('Add', [0, 1], '1'))
    t.same(await raw.next(), { type: 3, invocationId: '1', result: 1 })
  })
})

// ------------------------------------------------------------------ errors end only the offending connection

t.test('a protocol error closes only that connection', async (t) => {
  const cases: Array<{ name: string, options?: SignalRPluginOptions, bad: (raw: RawClient) => void }> = [
    { name: 'malformed JSON', bad: (raw) => { raw.sendText('{"type":1,' + RS) } },
    { name: 'a record that is not an object', bad: (raw) => { raw.sendText('[1,2]' + RS) } },
    { name: 'a record without type', bad: (raw) => { raw.send({ invocationId: '1', target: 'Add', arguments: [1, 2] }) } },
    {
      name: 'a message over maximumReceiveMessageSize',
      options: { maximumReceiveMessageSize: 1024 },
      bad: (raw) => { raw.send(invocation('Echo', ['x'.repeat(2000)], '1')) }
    },
    {
      name: 'a Completion with both result and error',
      bad: (raw) => { raw.send(completion('s1', { result: 1, error: 'boom' })) }
    }
  ]
  for (const { name, options, bad } of cases) {
    t.test(name, async (t) => {
      const { baseUrl, wsUrl, disconnected } = await start(t, options)
      const other = await connect(t, `${baseUrl}/hub`)
      const raw = await rawConnect(t, `${wsUrl}/hub`, { handshake: true })
      const id = await whoAmI(raw)
      bad(raw)
      t.equal(await raw.nextText(), CLOSE_WITH_ERROR)
      const { code } = await raw.closed
      t.equal(code, 1000)
      const { error } = await disconnected(id)
      t.type(error, Error, 'onDisconnected gets the error')
      t.equal(other.state, signalR.HubConnectionState.Connected)
      t.equal(await other.invoke('Add', 1, 2), 3, 'the other connection keeps working')
      await officialWorks(t, baseUrl)
    })
  }
})

t.test('the size limit applies per message, not per WebSocket message', async (t) => {
  const { wsUrl } = await start(t, { maximumReceiveMessageSize: 1024 })
  const raw = await rawConnect(t, `${wsUrl}/hub`, { handshake: true })
  const big = 'y'.repeat(900)
  raw.send(invocation('Echo', [big], '1'), invocation('Echo', [big], '2'), invocation('Echo', [big], '3'))
  t.same(await raw.next(), { type: 3, invocationId: '1', result: big })
  t.same(await raw.next(), { type: 3, invocationId: '2', result: big })
  t.same(await raw.next(), { type: 3, invocationId: '3', result: big })
})

/** An Echo invocation whose JSON text (without RS) is exactly `size` bytes. */
function echoOfSize (size: number, id: string): RawRecord {
  const overhead = JSON.stringify(invocation('Echo', [''], id)).length
  return invocation('Echo', ['x'.repeat(size - overhead)], id)
}

t.test('the size limit counts the record with its separator, as ASP.NET does', async (t) => {
  const { wsUrl } = await start(t, { maximumReceiveMessageSize: 1024 })
  const raw = await rawConnect(t, `${wsUrl}/hub`, { handshake: true })
  const fits = echoOfSize(1023, '1')
  t.equal(record(fits).length, 1024)
  raw.send(fits)
  t.same(await raw.next(), { type: 3, invocationId: '1', result: (fits.arguments as string[])[0] }, '1023 bytes + RS fit in 1024')
  raw.send(echoOfSize(1024, '2'))
  t.equal(await raw.nextText(), CLOSE_WITH_ERROR, '1024 bytes + RS do not')
})

t.test('the handshake size limit counts its separator too', async (t) => {
  const { wsUrl } = await start(t, { maximumReceiveMessageSize: 1024 })
  const handshakeOfSize = (size: number): string => {
    const overhead = JSON.stringify({ protocol: 'json', version: 1, padding: '' }).length
    return record({ protocol: 'json', version: 1, padding: 'p'.repeat(size - overhead) })
  }
  const ok = await rawConnect(t, `${wsUrl}/hub`)
  ok.sendText(handshakeOfSize(1023))
  t.equal(await ok.nextText(), '{}', '1023 bytes + RS fit in 1024')
  const tooBig = await rawConnect(t, `${wsUrl}/hub`)
  tooBig.sendText(handshakeOfSize(1024))
  t.equal(await tooBig.nextText(), '{"error":"Handshake was canceled."}', '1024 bytes + RS do not')
})

t.test('enableDetailedErrors adds the reason to the Close error', async (t) => {
  const { wsUrl } = await start(t, { enableDetailedErrors: true, maximumReceiveMessageSize: 1024 })
  const raw = await rawConnect(t, `${wsUrl}/hub`, { handshake: true })
  raw.send(invocation('Echo', ['x'.repeat(2000)], '1'))
  const close = await raw.next()
  t.equal(close.type, 7)
  t.equal(close.allowReconnect, true)
  t.match(close.error, /^Connection closed with an error\. .*The maximum message size of 1024B was exceeded/)
})

// ------------------------------------------------------------------ keep-alive and client timeout

t.test('keep-alive', async (t) => {
  t.test('an idle client receives pings every keepAliveInterval', async (t) => {
    const { wsUrl } = await start(t, { keepAliveInterval: 50 })
    const raw = await rawConnect(t, `${wsUrl}/hub`, { handshake: true })
    for (let i = 0; i < 3; i++) t.equal(await raw.nextText(), '{"type":6}')
  })

  t.test('the official client stays connected across many server-timeout periods', async (t) => {
    const { baseUrl, wsUrl } = await start(t, { keepAliveInterval: 50 })
    const c = await connect(t, `${baseUrl}/hub`, { serverTimeoutInMilliseconds: 300 })
    let closeError: Error | undefined | null = null
    void clientClosed(c).then((error) => { closeError = error })
    const started = Date.now()
    // A raw client on the same server shows the pings are flowing; 20 of them span several 300 ms periods.
    const raw = await rawConnect(t, `${wsUrl}/hub`, { handshake: true })
    for (let pings = 0; pings < 20 || Date.now() - started < 3 * 300;) {
      if ((await raw.next()).type === 6) pings++
    }
    t.equal(closeError, null, 'the official client never closed')
    t.equal(c.state, signalR.HubConnectionState.Connected)
    t.equal(await c.invoke('Add', 2, 3), 5)
  })

  t.test('a silent client is closed after clientTimeoutInterval', async (t) => {
    // The official client re-arms its ping timer only when a message arrives, so the server pings too.
    const { baseUrl, wsUrl, disconnected } = await start(t, { clientTimeoutInterval: 100, keepAliveInterval: 20 })
    // This one pings more often than the timeout, so it must survive.
    const c = await connect(t, `${baseUrl}/hub`, { keepAliveIntervalInMilliseconds: 20 })
    const raw = await rawConnect(t, `${wsUrl}/hub`, { handshake: true, ignorePings: true })
    const id = await whoAmI(raw)
    t.equal(await raw.nextText(), CLOSE_WITH_ERROR)
    t.equal((await raw.closed).code, 1000)
    const { error } = await disconnected(id)
    t.match(error?.message, /ClientTimeoutInterval/)
    t.equal(c.state, signalR.HubConnectionState.Connected, 'a client that pings is kept')
    t.equal(await c.invoke('Add', 1, 1), 2)
  })

  t.test('with enableDetailedErrors the Close names ClientTimeoutInterval', async (t) => {
    const { wsUrl } = await start(t, { clientTimeoutInterval: 100, enableDetailedErrors: true })
    const raw = await rawConnect(t, `${wsUrl}/hub`, { handshake: true })
    const close = await raw.next()
    t.equal(close.type, 7)
    t.equal(close.allowReconnect, true)
    t.match(close.error, /^Connection closed with an error\. .*ClientTimeoutInterval/)
    await raw.closed
  })
})

// ------------------------------------------------------------------ backpressure

t.test('a client that does not read is dropped; the others get every message', async (t) => {
  const payload = 'z'.repeat(10_000)
  const LIMIT = 5000
  let slowId = ''
  let slowGone = false
  const { baseUrl, wsUrl, disconnected, disconnects } = await start(t, { maximumSendBufferSize: 64 * 1024 }, (app, h) => {
    app.post('/blast', async () => {
      const clients = app.signalr.hubContext(h.hub).clients
      let sent = 0
      // Broadcast until the slow reader is dropped (bounded, so a broken limit fails instead of hanging).
      // eslint-disable-next-line no-unmodified-loop-condition -- set by the disconnect hook while this awaits
      while (!slowGone && sent < LIMIT) {
        await clients.all.send('Blob', sent, payload)
        sent++
        // Let the event loop run so that the readers in this process can read.
        await new Promise((resolve) => setImmediate(resolve))
      }
      await clients.all.send('Done', sent)
      return { sent }
    })
  })
  const slow = await rawConnect(t, `${wsUrl}/hub`, { handshake: true })
  slowId = await whoAmI(slow)
  const fast = await rawConnect(t, `${wsUrl}/hub`, { handshake: true, ignorePings: true })
  const fastId = await whoAmI(fast)
  void disconnected(slowId).then(() => { slowGone = true })
  ;(slow.ws as unknown as { _socket: Socket })._socket.pause()

  const response = fetch(`${baseUrl}/blast`, { method: 'POST' })
  const received: number[] = []
  const others: RawRecord[] = []
  let done: RawRecord
  for (;;) {
    const r = await fast.next()
    if (r.target === 'Done') {
      done = r
      break
    }
    if (r.target === 'Blob' && (r.arguments as [number, string])[1] === payload) received.push((r.arguments as [number, string])[0])
    else others.push(r)
  }
  t.same(others, [], 'nothing but the broadcast arrived')
  const { sent } = await (await response).json() as { sent: number }
  t.ok(sent < LIMIT, `the slow client was dropped after ${sent} messages`)
  t.same(done.arguments, [sent])
  t.equal(received.length, sent, 'the reading client got every message')
  t.ok(received.every((n, i) => n === i), 'in order')

  const gone = await disconnected(slowId)
  t.type(gone.error, Error, 'onDisconnected of the slow client gets an error')
  t.match(gone.error?.message, /did not read its messages fast enough/)
  t.notOk(disconnects.some((d) => d.connectionId === fastId), 'the reading client was not dropped')
  fast.send(invocation('Add', [1, 1], 'after'))
  t.same(await fast.next(), { type: 3, invocationId: 'after', result: 2 })
})

// ------------------------------------------------------------------ hub.abort()

t.test('hub.abort() sends a plain Close and ends the socket', async (t) => {
  const { baseUrl, wsUrl, disconnected } = await start(t)
  const other = await connect(t, `${baseUrl}/hub`)
  const raw = await rawConnect(t, `${wsUrl}/hub`, { handshake: true })
  const id = await whoAmI(raw)
  raw.send(invocation('Abort', [], '1'))
  t.equal(await raw.nextText(), '{"type":7}', 'no error, no allowReconnect, and no Completion before it')
  t.equal((await raw.closed).code, 1000)
  t.equal(raw.frames.filter((f) => f.includes('"type":3') && f.includes('"invocationId":"1"')).length, 0, 'the aborted invocation gets no Completion')
  const { error } = await disconnected(id)
  t.equal(error, undefined, 'an abort is a clean disconnect')
  t.equal(await other.invoke('Add', 1, 2), 3)
})

t.test('the official client sees hub.abort() as a close without error', async (t) => {
  const { baseUrl } = await start(t)
  const c = await connect(t, `${baseUrl}/hub`)
  const ended = clientClosed(c)
  await t.rejects(c.invoke('Abort'))
  t.equal(await ended, undefined)
})
