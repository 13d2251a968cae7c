import diagnostics from 'node:diagnostics_channel'
import { EventEmitter, once } from 'node:events'
import http from 'node:http'
import t, { type Test } from 'tap'
import { z } from 'zod'
import { MessagePackHubProtocol } from '@microsoft/signalr-protocol-msgpack'
import { defineHub } from '../../lib/index.js'
import type { HubOptions } from '../../lib/index.js'
import { startApp } from '../helpers/app.js'
import { deferredByKey } from '../helpers/deferred.js'
import { signalR } from '../helpers/clients.js'
import { frame, handshakeRequest, invocation, negotiateRaw, rawConnect, RS } from '../helpers/raw.js'

const NO_CACHE = { 'cache-control': 'no-cache, no-store', pragma: 'no-cache', expires: 'Thu, 01 Jan 1970 00:00:00 GMT' }
const TEXT = 'text/plain;charset=UTF-8'
const BINARY = 'application/octet-stream'

/**
 * Tells when the server has taken a poll and is holding it (the plugin's
 * diagnostics channel, see lib/diagnostics.ts), so a test can produce data
 * strictly after the poll is waiting.
 */
const polls = new EventEmitter()
const onPollHeld = (): void => { polls.emit('held') }
diagnostics.subscribe('fastify-signalr.long-polling.poll-held', onPollHeld)
t.teardown(() => { diagnostics.unsubscribe('fastify-signalr.long-polling.poll-held', onPollHeld) })

interface Ended { connectionId: string, error: Error | undefined }

function makeHub () {
  const endedOf = deferredByKey<Ended>()
  const hub = defineHub({
    methods: {
      Add: { args: [z.number(), z.number()], handler: (_h, a, b) => a + b },
      Echo: { args: [z.any()], handler: (_h, v) => v },
      Push: { args: [z.string()], async handler (h, s) { await h.clients.caller.send('Pushed', s) } },
      Abort: { args: [], handler (h) { h.abort() } }
    },
    onDisconnected (h, error) { endedOf(h.connectionId).resolve({ connectionId: h.connectionId, error }) }
  })
  return { hub, disconnected: (id: string) => endedOf(id).promise }
}

interface Answer { status: number, headers: Headers, body: Buffer, text: string }

async function answer (response: Response): Promise<Answer> {
  const body = Buffer.from(await response.arrayBuffer())
  return { status: response.status, headers: response.headers, body, text: body.toString('utf8') }
}

function headersOf (a: Answer, names: string[]): Record<string, string | null> {
  return Object.fromEntries(names.map((n) => [n, a.headers.get(n)]))
}

class LongPollClient {
  constructor (readonly url: string, readonly token: string, readonly connectionId: string) {}

  /** A long-poll GET as the official client sends it (cache-buster included). */
  poll (): Promise<Answer> {
    return fetch(`${this.url}?id=${this.token}&_=${Date.now()}`, { headers: { 'x-requested-with': 'XMLHttpRequest' } }).then(answer)
  }

  /** Starts a poll and resolves once the server is holding it (wrapped: a bare promise would be awaited too). */
  async heldPoll (): Promise<{ answer: Promise<Answer> }> {
    const held = once(polls, 'held')
    const pending = this.poll()
    await held
    return { answer: pending }
  }

  post (body: string | Uint8Array, contentType = TEXT): Promise<Answer> {
    const payload = typeof body === 'string' ? body : new Uint8Array(body)
    return fetch(`${this.url}?id=${this.token}`, { method: 'POST', headers: { 'content-type': contentType }, body: payload }).then(answer)
  }

  delete (): Promise<Answer> {
    return fetch(`${this.url}?id=${this.token}`, { method: 'DELETE' }).then(answer)
  }
}

async function negotiated (url: string): Promise<LongPollClient> {
  const { body } = await negotiateRaw(url)
  return new LongPollClient(url, body.connectionToken as string, body.connectionId as string)
}

/** Negotiate, first poll, JSON handshake, and the poll that brings `{}`. */
async function connected (t: Test, url: string): Promise<LongPollClient> {
  const c = await negotiated(url)
  t.equal((await c.poll()).status, 200, 'first poll')
  t.equal((await c.post(handshakeRequest())).status, 200, 'handshake POST')
  t.equal((await c.poll()).text, `{}${RS}`, 'handshake answer')
  return c
}

async function start (t: Test, options: HubOptions = {}) {
  const { hub, disconnected } = makeHub()
  const app = await startApp(t, (app) => { app.mapHub('/hub', hub, options) })
  return { ...app, url: `${app.baseUrl}/hub`, disconnected }
}

t.test('the first poll answers at once with an empty 200 octet-stream', async (t) => {
  const { url } = await start(t)
  const c = await negotiated(url)
  const first = await c.poll()
  t.equal(first.status, 200)
  t.equal(first.headers.get('content-type'), BINARY)
  t.equal(first.headers.get('content-length'), '0')
  t.equal(first.body.length, 0)
  t.same(headersOf(first, Object.keys(NO_CACHE)), NO_CACHE, 'the first poll is not cacheable either')
})

t.test('a held poll is answered as soon as data comes, no-cache', async (t) => {
  const { url } = await start(t)
  const c = await connected(t, url)
  const held = await c.heldPoll()
  t.equal((await c.post(frame(invocation('Add', [1, 2], '1')))).status, 200)
  const got = await held.answer
  t.equal(got.status, 200)
  t.equal(got.headers.get('content-type'), BINARY)
  t.equal(got.headers.get('content-length'), String(got.body.length))
  t.same(headersOf(got, Object.keys(NO_CACHE)), NO_CACHE)
  t.equal(got.text, `{"type":3,"invocationId":"1","result":3}${RS}`)
})

t.test('a poll takes every record queued since the last one, in one body', async (t) => {
  const { url } = await start(t)
  const c = await connected(t, url)
  // No poll is waiting: the answers queue up on the server.
  await c.post(frame(invocation('Add', [1, 2], '1'), invocation('Push', ['hi'], '2')))
  await c.post(frame(invocation('Add', [2, 2], '3')))
  const got = await c.poll()
  t.equal(got.status, 200)
  t.same(got.text.split(RS), [
    '{"type":3,"invocationId":"1","result":3}',
    '{"type":1,"target":"Pushed","arguments":["hi"]}',
    '{"type":3,"invocationId":"2","result":null}',
    '{"type":3,"invocationId":"3","result":4}',
    ''
  ], 'whole records, in order, ending with a separator')
})

t.test('a newer poll finishes the older one with 204', async (t) => {
  const { url } = await start(t)
  const c = await connected(t, url)
  const older = await c.heldPoll()
  const newer = await c.heldPoll()
  const first = await older.answer
  t.equal(first.status, 204, 'the older poll ends with 204')
  t.same(headersOf(first, Object.keys(NO_CACHE)), NO_CACHE)
  await c.post(frame(invocation('Add', [2, 2], '1')))
  const second = await newer.answer
  t.equal(second.status, 200)
  t.equal(second.text, `{"type":3,"invocationId":"1","result":4}${RS}`, 'the newer poll gets the data')
})

t.test('longPollTimeout: a poll without data ends with an empty 200 text/plain', async (t) => {
  const { url } = await start(t, { longPollTimeout: 100 })
  const c = await connected(t, url)
  const started = Date.now()
  const held = await c.heldPoll()
  const got = await held.answer
  const took = Date.now() - started
  t.equal(got.status, 200)
  t.match(got.headers.get('content-type'), /^text\/plain/)
  t.equal(got.headers.get('content-length'), '0')
  t.equal(got.body.length, 0)
  t.same(headersOf(got, Object.keys(NO_CACHE)), NO_CACHE)
  // The heartbeat runs at half the shortest timeout, so the answer comes within about 1.5 x longPollTimeout.
  t.ok(took < 500, `answered after ${took} ms, not after the default 1 s heartbeat`)
  // The client polls again: the connection is still alive.
  await c.post(frame(invocation('Add', [1, 1], '1')))
  t.equal((await c.poll()).text, `{"type":3,"invocationId":"1","result":2}${RS}`)
})

t.test('DELETE: 202, the next poll gets what was left, then 204', async (t) => {
  const { url, disconnected } = await start(t)
  const c = await connected(t, url)
  await c.post(frame(invocation('Add', [3, 4], '1')))
  const deleted = await c.delete()
  t.equal(deleted.status, 202)
  t.match(deleted.headers.get('content-type'), /^text\/plain/)
  t.equal((await disconnected(c.connectionId)).error, undefined, 'a DELETE is a clean end')
  const last = await c.poll()
  t.equal(last.status, 200)
  t.equal(last.text, `{"type":3,"invocationId":"1","result":7}${RS}`, 'the data queued before the DELETE')
  const done = await c.poll()
  t.equal(done.status, 204, 'then 204: the client stops without an error')
  t.same(headersOf(done, Object.keys(NO_CACHE)), NO_CACHE)
})

t.test('hub.abort(): a held poll gets the Close, the next one 204', async (t) => {
  const { url, disconnected } = await start(t)
  const c = await connected(t, url)
  const held = await c.heldPoll()
  await c.post(frame(invocation('Abort', [], '1')))
  const got = await held.answer
  t.equal(got.status, 200)
  t.equal(got.text, `{"type":7}${RS}`, 'a plain Close, no completion for the aborting call')
  t.equal((await c.poll()).status, 204)
  t.equal((await disconnected(c.connectionId)).error, undefined)
})

t.test('POST bodies: text/plain JSON and application/octet-stream MessagePack', async (t) => {
  const { url } = await start(t)

  t.test('JSON in text/plain;charset=UTF-8, several records in one body', async (t) => {
    const c = await connected(t, url)
    const sent = await c.post(frame(invocation('Echo', ['héllo ✓'], '1'), invocation('Add', [1, 1], '2')), TEXT)
    t.equal(sent.status, 200)
    t.equal(sent.body.length, 0, 'an empty answer')
    let text = ''
    while (text.split(RS).length < 3) text += (await c.poll()).text
    t.equal(text, `{"type":3,"invocationId":"1","result":"héllo ✓"}${RS}{"type":3,"invocationId":"2","result":2}${RS}`)
  })

  t.test('MessagePack in application/octet-stream', async (t) => {
    const codec = new MessagePackHubProtocol()
    const c = await negotiated(url)
    t.equal((await c.poll()).status, 200)
    // The handshake is always JSON, also for MessagePack.
    t.equal((await c.post(handshakeRequest('messagepack'), TEXT)).status, 200)
    t.equal((await c.poll()).text, `{}${RS}`)
    const bytes = new Uint8Array(codec.writeMessage({
      type: signalR.MessageType.Invocation, invocationId: '1', target: 'Echo', arguments: [new Uint8Array([0, 1, 255])], streamIds: []
    } as signalR.InvocationMessage))
    const ping = new Uint8Array(codec.writeMessage({ type: signalR.MessageType.Ping }))
    const sent = await c.post(Buffer.concat([bytes, ping]), BINARY)
    t.equal(sent.status, 200)
    const got = await c.poll()
    t.equal(got.headers.get('content-type'), BINARY)
    const messages = codec.parseMessages(got.body.buffer.slice(got.body.byteOffset, got.body.byteOffset + got.body.length) as ArrayBuffer, signalR.NullLogger.instance)
    t.equal(messages.length, 1, 'one completion (no ping on long polling)')
    const completion = messages[0] as signalR.CompletionMessage
    t.equal(completion.type, signalR.MessageType.Completion)
    t.equal(completion.invocationId, '1')
    t.same(Array.from(completion.result as Uint8Array), [0, 1, 255], 'binary survives both ways')
  })
})

t.test('a POST body over the limit is refused with 413 before it is read', async (t) => {
  const { url } = await start(t)
  const c = await connected(t, url)
  const { port } = new URL(url)
  // Announce 8 MiB, send 1 KiB: the answer must come without the rest of the body.
  const request = http.request({
    host: '127.0.0.1',
    port: Number(port),
    method: 'POST',
    path: `/hub?id=${c.token}`,
    headers: { 'content-type': TEXT, 'content-length': String(8 * 1024 * 1024) }
  })
  request.on('error', () => {})
  request.write(Buffer.alloc(1024, 0x61))
  const [response] = await once(request, 'response') as [http.IncomingMessage]
  t.equal(response.statusCode, 413)
  response.resume()
  request.destroy()
  // The connection itself is not harmed.
  await c.post(frame(invocation('Add', [5, 5], '1')))
  t.equal((await c.poll()).text, `{"type":3,"invocationId":"1","result":10}${RS}`)
})

t.test('a client that stops polling is disposed after disconnectTimeout', async (t) => {
  const { url, disconnected } = await start(t, { disconnectTimeout: 200 })
  // Taken before connecting: the last poll ends after this, so a correct server
  // disposes at least 200 ms later however slow the machine is. Taken after, a
  // slow connect made the bound fail on a correct server.
  const started = Date.now()
  const c = await connected(t, url)
  const ended = await disconnected(c.connectionId)
  t.type(ended.error, Error, 'onDisconnected gets an error')
  t.match(ended.error?.message, /stopped polling/)
  t.ok(Date.now() - started >= 150, 'not before the timeout')
})

t.test('status codes and texts', async (t) => {
  const { hub } = makeHub()
  const { baseUrl, wsUrl } = await startApp(t, (app) => {
    app.mapHub('/hub', hub)
    app.mapHub('/ws-only', hub, { transports: ['webSockets'] })
    app.mapHub('/no-lp', hub, { transports: ['webSockets', 'serverSentEvents'] })
  })
  const url = `${baseUrl}/hub`
  const text = async (response: Promise<Response>): Promise<[number, string]> => {
    const a = await answer(await response)
    return [a.status, a.text]
  }

  t.same(await text(fetch(url, { method: 'POST', body: 'x', headers: { 'content-type': TEXT } })), [400, 'Connection ID required'], 'POST without id')
  t.same(await text(fetch(url)), [400, 'Connection ID required'], 'poll without id')
  t.same(await text(fetch(url, { method: 'DELETE' })), [400, 'Connection ID required'], 'DELETE without id')
  t.same(await text(fetch(`${url}?id=nope`, { method: 'POST', body: 'x', headers: { 'content-type': TEXT } })), [404, 'No Connection with that ID'])
  t.same(await text(fetch(`${url}?id=nope`)), [404, 'No Connection with that ID'], 'poll with an unknown id')
  t.same(await text(fetch(`${url}?id=nope`, { method: 'DELETE' })), [404, 'No Connection with that ID'])

  const ws = await negotiated(url)
  const raw = await rawConnect(t, `${wsUrl}/hub?id=${ws.token}`, { handshake: true })
  t.same(await text(fetch(`${url}?id=${ws.token}`, { method: 'POST', body: frame(invocation('Add', [1, 1], '1')), headers: { 'content-type': TEXT } })),
    [405, 'POST requests are not allowed for WebSocket connections.'])
  t.same(await text(fetch(`${url}?id=${ws.token}`, { method: 'DELETE' })),
    [400, 'Cannot terminate this connection using the DELETE endpoint.'])
  t.same(await text(fetch(`${url}?id=${ws.token}`)), [400, 'Cannot change transports mid-connection'], 'a poll on a WebSocket connection')
  raw.send(invocation('Add', [1, 1], '1'))
  t.same(await raw.next(), { type: 3, invocationId: '1', result: 2 }, 'the WebSocket connection is unaffected')

  for (const path of ['/ws-only', '/no-lp']) {
    const lp = await negotiated(`${baseUrl}${path}`)
    t.same(await text(fetch(`${baseUrl}${path}?id=${lp.token}`)), [404, 'LongPolling transport not supported by this end point type'], `${path}: poll`)
  }
  const sse = await negotiated(`${baseUrl}/ws-only`)
  t.same(await text(fetch(`${baseUrl}/ws-only?id=${sse.token}`, { headers: { accept: 'text/event-stream' } })),
    [404, 'ServerSentEvents transport not supported by this end point type'])

  const listed = async (path: string): Promise<unknown> => (await negotiateRaw(`${baseUrl}${path}`)).body.availableTransports
  t.same(await listed('/hub'), [
    { transport: 'WebSockets', transferFormats: ['Text', 'Binary'] },
    { transport: 'ServerSentEvents', transferFormats: ['Text'] },
    { transport: 'LongPolling', transferFormats: ['Text', 'Binary'] }
  ], 'all three by default, in ASP.NET order')
  t.same(await listed('/ws-only'), [{ transport: 'WebSockets', transferFormats: ['Text', 'Binary'] }])
  t.same(await listed('/no-lp'), [
    { transport: 'WebSockets', transferFormats: ['Text', 'Binary'] },
    { transport: 'ServerSentEvents', transferFormats: ['Text'] }
  ])
})

t.test('a long-poll GET on an SSE connection: 400 Cannot change transports mid-connection', async (t) => {
  const { url } = await start(t)
  const c = await negotiated(url)
  const controller = new AbortController()
  t.teardown(() => { controller.abort() })
  const sse = await fetch(`${url}?id=${c.token}`, { headers: { accept: 'text/event-stream' }, signal: controller.signal })
  t.equal(sse.status, 200)
  const got = await c.poll()
  t.same([got.status, got.text], [400, 'Cannot change transports mid-connection'])
  const deleted = await c.delete()
  t.same([deleted.status, deleted.text], [400, 'Cannot terminate this connection using the DELETE endpoint.'], 'no DELETE for SSE')
})

t.test('the official client over long polling end to end', async (t) => {
  const { url, disconnected } = await start(t)
  const c = new signalR.HubConnectionBuilder()
    .withUrl(url, { transport: signalR.HttpTransportType.LongPolling })
    .configureLogging(signalR.LogLevel.None)
    .build()
  t.teardown(() => c.stop())
  await c.start()
  const pushed = new Promise((resolve) => { c.on('Pushed', resolve) })
  t.equal(await c.invoke('Add', 40, 2), 42)
  await c.invoke('Push', 'via poll')
  t.equal(await pushed, 'via poll')
  const id = c.connectionId!
  await c.stop()
  t.equal((await disconnected(id)).error, undefined)
})
