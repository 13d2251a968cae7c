import { once } from 'node:events'
import http from 'node:http'
import t, { type Test } from 'tap'
import { z } from 'zod'
import { defineHub } from '../../lib/index.js'
import { formatEvent } from '../../lib/transports/server-sent-events.js'
import { startApp } from '../helpers/app.js'
import { deferredByKey } from '../helpers/deferred.js'
import { frame, handshakeRequest, invocation, negotiateRaw, RS } from '../helpers/raw.js'

const TEXT = 'text/plain;charset=UTF-8'
const MSGPACK_OVER_SSE = "Cannot use the 'messagepack' protocol on the current transport. The transport does not support 'Binary' transfer format."

interface Ended { error: Error | undefined }

function makeHub () {
  const connected: string[] = []
  const endedOf = deferredByKey<Ended>()
  const hub = defineHub({
    methods: {
      Add: { args: [z.number(), z.number()], handler: (_h, a, b) => a + b },
      Transport: { args: [], handler: (h) => h.transport },
      Lines: { args: [z.string()], async handler (h, s) { await h.clients.caller.send('Lines', s) } }
    },
    onConnected (h) { connected.push(h.connectionId) },
    onDisconnected (h, error) { endedOf(h.connectionId).resolve({ error }) }
  })
  return { hub, connected, disconnected: (id: string) => endedOf(id).promise }
}

/**
 * A raw `text/event-stream` reader: keeps every byte, and hands out events
 * (the text between blank lines, exactly as written) in order.
 */
class EventStream {
  raw = ''
  private consumed = 0
  private readonly waiters: Array<() => void> = []
  readonly ended: Promise<void>

  constructor (readonly request: http.ClientRequest, readonly response: http.IncomingMessage) {
    response.setEncoding('utf8')
    response.on('data', (chunk: string) => {
      this.raw += chunk
      for (const wake of this.waiters.splice(0)) wake()
    })
    this.ended = new Promise((resolve) => {
      response.once('close', () => {
        resolve()
        for (const wake of this.waiters.splice(0)) wake()
      })
    })
  }

  /** The next event as written (without its terminating blank line). Skips the opening comment. */
  async next (): Promise<string> {
    for (;;) {
      if (this.consumed === 0 && this.raw.startsWith(':\r\n')) this.consumed = 3
      const end = this.raw.indexOf('\r\n\r\n', this.consumed)
      if (end !== -1) {
        const event = this.raw.slice(this.consumed, end)
        this.consumed = end + 4
        return event
      }
      if (this.response.closed || this.response.readableEnded) throw new Error(`the event stream ended; unread: ${JSON.stringify(this.raw.slice(this.consumed))}`)
      await new Promise<void>((resolve) => { this.waiters.push(resolve) })
    }
  }

  close (): void {
    this.request.destroy()
  }
}

async function openEventStream (t: Test, url: string, headers: Record<string, string> = {}): Promise<EventStream> {
  const request = http.get(url, { headers: { accept: 'text/event-stream', ...headers } })
  request.on('error', () => {})
  t.teardown(() => { request.destroy() })
  const [response] = await once(request, 'response') as [http.IncomingMessage]
  return new EventStream(request, response)
}

async function text (response: Promise<Response>): Promise<[number, string]> {
  const r = await response
  return [r.status, await r.text()]
}

function post (url: string, token: string, body: string): Promise<[number, string]> {
  return text(fetch(`${url}?id=${token}`, { method: 'POST', headers: { 'content-type': TEXT }, body }))
}

async function start (t: Test) {
  const probe = makeHub()
  const app = await startApp(t, (app) => { app.mapHub('/hub', probe.hub) })
  return { ...app, ...probe, url: `${app.baseUrl}/hub` }
}

async function negotiated (url: string): Promise<{ token: string, connectionId: string }> {
  const { body } = await negotiateRaw(url)
  return { token: body.connectionToken as string, connectionId: body.connectionId as string }
}

t.test('the event stream: headers, the opening comment, one event per write', async (t) => {
  const { url, connected } = await start(t)
  const { token, connectionId } = await negotiated(url)
  const events = await openEventStream(t, `${url}?id=${token}`)
  const { headers, statusCode } = events.response
  t.equal(statusCode, 200)
  t.equal(headers['content-type'], 'text/event-stream')
  t.equal(headers['cache-control'], 'no-cache,no-store')
  t.equal(headers.pragma, 'no-cache')
  t.equal(headers['content-encoding'], 'identity')
  t.notOk('content-length' in headers, 'a stream, not a sized body')

  // The handshake comes over POST; its answer is the first event.
  t.same(await post(url, token, handshakeRequest()), [200, ''])
  t.equal(await events.next(), `data: {}${RS}`)
  t.ok(events.raw.startsWith(`:\r\ndata: {}${RS}\r\n\r\n`), 'the comment line comes first, then data: <record> CRLF CRLF')
  t.same(connected, [connectionId], 'onConnected ran')

  t.same(await post(url, token, frame(invocation('Add', [1, 2], '1'), invocation('Transport', [], '2'))), [200, ''])
  t.equal(await events.next(), `data: {"type":3,"invocationId":"1","result":3}${RS}`)
  t.equal(await events.next(), `data: {"type":3,"invocationId":"2","result":"ServerSentEvents"}${RS}`)

  // A payload with an escaped newline stays on one data line (JSON never carries a raw LF).
  t.same(await post(url, token, frame(invocation('Lines', ['a\nb'], '3'))), [200, ''])
  t.equal(await events.next(), `data: {"type":1,"target":"Lines","arguments":["a\\nb"]}${RS}`)
  t.equal(await events.next(), `data: {"type":3,"invocationId":"3","result":null}${RS}`)
})

t.test('a second event stream on the same connection gets 409; other mismatches 400/404', async (t) => {
  const { url, baseUrl } = await start(t)
  const { token } = await negotiated(url)
  const first = await openEventStream(t, `${url}?id=${token}`)
  t.equal(first.response.statusCode, 200)
  const second = await openEventStream(t, `${url}?id=${token}`)
  t.equal(second.response.statusCode, 409)
  t.same(await text(fetch(`${url}?id=${token}`, { method: 'DELETE' })), [400, 'Cannot terminate this connection using the DELETE endpoint.'])
  const unknown = await openEventStream(t, `${url}?id=nope`)
  t.equal(unknown.response.statusCode, 404, 'no lazy creation: the connection must exist')
  const missing = await openEventStream(t, `${baseUrl}/hub`)
  t.equal(missing.response.statusCode, 400, 'no id')

  // The first stream is unaffected.
  t.same(await post(url, token, handshakeRequest()), [200, ''])
  t.equal(await first.next(), `data: {}${RS}`)
})

t.test('MessagePack over SSE is refused with the SignalR handshake error', async (t) => {
  const { url, connected } = await start(t)
  const { token, connectionId } = await negotiated(url)
  const events = await openEventStream(t, `${url}?id=${token}`)
  t.same(await post(url, token, handshakeRequest('messagepack')), [200, ''])
  t.equal(await events.next(), `data: ${JSON.stringify({ error: MSGPACK_OVER_SSE })}${RS}`)
  await events.ended
  t.pass('the server ends the stream after the handshake error')
  t.notOk(connected.includes(connectionId), 'onConnected never ran')
  t.same(await post(url, token, handshakeRequest()), [404, 'No Connection with that ID'], 'the connection is gone')
})

t.test('closing the EventSource ends the connection: onDisconnected runs', async (t) => {
  const { url, disconnected } = await start(t)
  const { token, connectionId } = await negotiated(url)
  const events = await openEventStream(t, `${url}?id=${token}`)
  await post(url, token, handshakeRequest())
  t.equal(await events.next(), `data: {}${RS}`)
  t.same(await post(url, token, frame(invocation('Add', [2, 2], '1'))), [200, ''])
  t.equal(await events.next(), `data: {"type":3,"invocationId":"1","result":4}${RS}`)
  events.close()
  const ended = await disconnected(connectionId)
  t.equal(ended.error, undefined, 'the browser closing its EventSource is the normal way to end SSE')
  t.same(await post(url, token, frame(invocation('Add', [2, 2], '2'))), [404, 'No Connection with that ID'],
    'an SSE connection cannot be resumed')
})

t.test('formatEvent: each line of a payload is its own data: line', async (t) => {
  const cases: Array<[string, string, string]> = [
    ['a single line', 'Hello, World', 'data: Hello, World\r\n\r\n'],
    ['a JSON record', `{"type":6}${RS}`, `data: {"type":6}${RS}\r\n\r\n`],
    ['LF', 'Hello\nWorld', 'data: Hello\r\ndata: World\r\n\r\n'],
    ['CRLF: the CR is dropped', 'Hello\r\nWorld', 'data: Hello\r\ndata: World\r\n\r\n'],
    ['a trailing LF gives an empty last line', 'Hello\n', 'data: Hello\r\ndata: \r\n\r\n'],
    ['a trailing CRLF likewise', 'Hello\r\n', 'data: Hello\r\ndata: \r\n\r\n'],
    ['only LFs', '\n\n', 'data: \r\ndata: \r\ndata: \r\n\r\n'],
    ['a CR inside a line is kept', 'Hello\rWorld\r\nNext\nLast', 'data: Hello\rWorld\r\ndata: Next\r\ndata: Last\r\n\r\n'],
    ['multi-byte characters', 'é\nλ', 'data: é\r\ndata: λ\r\n\r\n']
  ]
  for (const [name, payload, expected] of cases) {
    t.equal(formatEvent(Buffer.from(payload, 'utf8')).toString('utf8'), expected, name)
  }
  const big = Buffer.alloc(100_000, 0x78)
  const formatted = formatEvent(big)
  t.equal(formatted.length, big.length + 'data: \r\n\r\n'.length, 'a long single line is framed once')
})
