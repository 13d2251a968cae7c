import type { FastifyReply } from 'fastify'
import type { ServerResponse } from 'node:http'
import type { TransferFormat } from '../protocol/hub-protocol.js'
import { HttpTransportBase } from './http-inbound.js'
import type { Transport } from './transport.js'

const FORMATS: readonly TransferFormat[] = Object.freeze(['Text'])
const DATA = Buffer.from('data: ')
const CRLF = Buffer.from('\r\n')
const END_OF_EVENT = Buffer.from('\r\n\r\n')
const LF = 0x0a
const CR = 0x0d

const kOwner = Symbol('fastify-signalr.sseTransport')
type OwnedResponse = ServerResponse & { [kOwner]: ServerSentEventsTransport }

function responseOnClose (this: OwnedResponse): void {
  this[kOwner].onResponseClose()
}

function responseOnDrain (this: OwnedResponse): void {
  this[kOwner].owner?.onTransportDrain()
}

/**
 * One transport write as one event: each line becomes `data: <line>` (a CR
 * before the LF is dropped) and a blank line ends the event. JSON records have
 * no raw newlines, so the common case is a single `data:` line.
 */
export function formatEvent (data: Buffer): Buffer {
  if (data.indexOf(LF) === -1) return Buffer.concat([DATA, data, END_OF_EVENT])
  const parts: Buffer[] = []
  let start = 0
  while (start <= data.length) {
    let end = data.indexOf(LF, start)
    if (end === -1) end = data.length
    const lineEnd = end > start && data[end - 1] === CR ? end - 1 : end
    parts.push(DATA, data.subarray(start, lineEnd), CRLF)
    start = end + 1
  }
  parts.push(CRLF)
  return Buffer.concat(parts)
}

/**
 * Server-Sent Events: a long-lived text/event-stream response carries
 * server-to-client records; client-to-server records come as POSTs.
 */
export class ServerSentEventsTransport extends HttpTransportBase implements Transport {
  readonly kind = 'ServerSentEvents' as const
  readonly transferFormats = FORMATS
  readonly needsKeepAlive = true
  readonly lingersAfterClose = false
  private readonly response: OwnedResponse
  private closed = false

  constructor (reply: FastifyReply) {
    super()
    reply.hijack()
    const response = reply.raw as OwnedResponse
    this.response = response
    response[kOwner] = this
    response.writeHead(200, {
      'content-type': 'text/event-stream',
      'cache-control': 'no-cache,no-store',
      pragma: 'no-cache',
      'content-encoding': 'identity',
      // Proxies such as nginx would otherwise buffer the stream.
      'x-accel-buffering': 'no'
    })
    // An initial comment sends the headers at once, so EventSource opens (and Firefox is happy).
    response.write(':\r\n')
    response.on('close', responseOnClose)
  }

  send (data: Buffer): void {
    if (this.closed) return
    this.response.write(formatEvent(data))
  }

  get bufferedAmount (): number {
    return this.response.writableLength
  }

  waitForDrain (): void {
    if (this.closed) {
      this.owner?.onTransportDrain()
      return
    }
    this.response.once('drain', responseOnDrain)
  }

  whenClosed (): Promise<void> {
    if (this.response.closed) return Promise.resolve()
    return new Promise((resolve) => { this.response.once('close', resolve) })
  }

  close (): void {
    if (this.closed) return
    this.closed = true
    this.inbound.close()
    this.response.end()
  }

  /** The client closed its EventSource (there is no other way to end SSE). */
  onResponseClose (): void {
    const wasClosed = this.closed
    this.closed = true
    this.inbound.close()
    if (!wasClosed) this.owner?.onTransportClose(undefined)
  }
}
