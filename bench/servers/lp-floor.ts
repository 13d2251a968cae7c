/**
 * The floor under long polling: the least a server can do to speak SignalR
 * JSON long polling to bench/http-links.ts (negotiate, polls, POSTs, the
 * handshake, Echo and Broadcast; no validation, no timeouts, no hub), on
 * Node's HTTP server alone or on Fastify routes. bench:instructions --http
 * counts it beside fastify-signalr and Socket.IO polling, to show how much
 * of a round trip the HTTP stack takes before any SignalR code runs.
 */
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http'
import Fastify from 'fastify'
import { announce, driverControls, portFromArgs } from './common.js'

const RS = '\u001e'
const NO_CACHE = { 'cache-control': 'no-cache, no-store', pragma: 'no-cache', expires: 'Thu, 01 Jan 1970 00:00:00 GMT' }

/** How a held poll is answered: writeHead and end, or Fastify's reply.send. */
type Answer = (body: string) => void
interface FloorConn { queue: string[], poll: Answer | null, polled: boolean }
const conns = new Map<string, FloorConn>()
let nextId = 0

function rawAnswer (res: ServerResponse): Answer {
  return (body) => {
    res.writeHead(200, { ...NO_CACHE, 'content-type': 'application/octet-stream', 'content-length': Buffer.byteLength(body) })
    res.end(body)
  }
}

function push (conn: FloorConn, record: string): void {
  conn.queue.push(record + RS)
  const poll = conn.poll
  if (poll === null) return
  conn.poll = null
  poll(conn.queue.join(''))
  conn.queue = []
}

function negotiate (): string {
  const id = String(++nextId)
  conns.set(id, { queue: [], poll: null, polled: false })
  return JSON.stringify({ negotiateVersion: 1, connectionId: id, connectionToken: id, availableTransports: [{ transport: 'LongPolling', transferFormats: ['Text', 'Binary'] }] })
}

/** A GET: answered now (the first, or data waiting), else held. */
function poll (conn: FloorConn, answer: Answer): void {
  if (!conn.polled || conn.queue.length > 0) {
    conn.polled = true
    answer(conn.queue.join(''))
    conn.queue = []
  } else {
    conn.poll = answer
  }
}

/** A POST body's records. */
function receive (conn: FloorConn, body: string): void {
  for (const record of body.split(RS)) {
    if (record === '') continue
    if (record.startsWith('{"protocol"')) {
      push(conn, '{}')
      continue
    }
    const m = JSON.parse(record) as { type: number, invocationId?: string, target?: string, arguments?: unknown[] }
    if (m.type !== 1) continue
    if (m.target === 'Broadcast') {
      const text = JSON.stringify({ type: 1, target: 'msg', arguments: m.arguments })
      for (const c of conns.values()) push(c, text)
    } else if (m.invocationId !== undefined) {
      push(conn, JSON.stringify({ type: 3, invocationId: m.invocationId, result: m.arguments?.[0] }))
    }
  }
}

function idOf (url: string): string {
  return new URLSearchParams(url.slice(url.indexOf('?') + 1)).get('id') ?? ''
}

function serveHttp (): void {
  const server = createServer((req: IncomingMessage, res: ServerResponse) => {
    const url = req.url ?? ''
    if (req.method === 'POST' && url.startsWith('/hub/negotiate')) {
      res.writeHead(200, { 'content-type': 'application/json; charset=utf-8' })
      res.end(negotiate())
      return
    }
    const conn = conns.get(idOf(url))
    if (conn === undefined) {
      res.writeHead(404)
      res.end()
      return
    }
    if (req.method === 'GET') {
      poll(conn, rawAnswer(res))
      return
    }
    const chunks: Buffer[] = []
    req.on('data', (chunk: Buffer) => chunks.push(chunk))
    req.on('end', () => {
      receive(conn, Buffer.concat(chunks).toString())
      res.writeHead(200, { 'content-type': 'text/plain; charset=utf-8', 'content-length': 0 })
      res.end()
    })
  })
  server.listen(portFromArgs(), '127.0.0.1', () => { announce((server.address() as { port: number }).port) })
}

async function serveFastify (): Promise<void> {
  const app = Fastify({ logger: false })
  app.removeAllContentTypeParsers()
  app.addContentTypeParser(['text/plain', 'application/octet-stream', '*'], { parseAs: 'string' }, (_request, body, done) => { done(null, body) })
  app.post('/hub/negotiate', (_request, reply) => { reply.type('application/json; charset=utf-8').send(negotiate()) })
  app.get('/hub', (request, reply) => {
    const conn = conns.get((request.query as { id?: string }).id ?? '')
    if (conn === undefined) reply.code(404).send()
    else poll(conn, (body) => { reply.code(200).headers(NO_CACHE).type('application/octet-stream').send(body) })
  })
  app.post('/hub', (request, reply) => {
    const conn = conns.get((request.query as { id?: string }).id ?? '')
    if (conn === undefined) {
      reply.code(404).send()
      return
    }
    receive(conn, request.body as string)
    reply.type('text/plain; charset=utf-8').send('')
  })
  await app.listen({ port: portFromArgs(), host: '127.0.0.1' })
  announce((app.server.address() as { port: number }).port)
}

export async function serveLpFloor (on: 'http' | 'fastify'): Promise<void> {
  driverControls()
  if (on === 'http') serveHttp()
  else await serveFastify()
}
