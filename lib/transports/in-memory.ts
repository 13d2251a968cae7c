import { randomBytes } from 'node:crypto'
import type { TransferFormat } from '../protocol/hub-protocol.js'
import type { Transport, TransportOwner } from './transport.js'

const FORMATS: readonly TransferFormat[] = Object.freeze(['Text', 'Binary'])
const RESOLVED = Promise.resolve()

/**
 * The header an in-process connect request carries: a one-time random key
 * into `waiting`. Only code in this process can know a live key, so a
 * network client sending the header gets the ordinary routes.
 */
export const INJECT_HEADER = 'x-fastify-signalr-inject'

/** Client ends waiting for their connect request, by one-time key. */
const waiting = new Map<string, InMemoryClientEnd>()

/** Whether a request names a waiting client end (its key is live in this process). */
export function hasInjectedClient (headers: Record<string, string | string[] | undefined>): boolean {
  const key = headers[INJECT_HEADER]
  return typeof key === 'string' && waiting.has(key)
}

/** The client end a connect request names, taken once (undefined for any other request). */
export function takeInjectedClient (headers: Record<string, string | string[] | undefined>): InMemoryClientEnd | undefined {
  const key = headers[INJECT_HEADER]
  if (typeof key !== 'string') return undefined
  const client = waiting.get(key)
  if (client !== undefined) waiting.delete(key)
  return client
}

/** What the official client's HttpConnection sets on a transport (its ITransport). */
type ReceiveHandler = ((data: string | ArrayBuffer) => void) | null
type CloseHandler = ((error?: Error) => void) | null

/** Issues the connect request through `app.inject` (the route's hooks run on it); resolves its status. */
export type ConnectRequest = (url: string, headers: Record<string, string>) => Promise<{ statusCode: number, body: string }>

/**
 * The client half: an object the official `@microsoft/signalr` client takes
 * as its transport (`withUrl(url, { transport })`). Bytes go straight to the
 * server half, a turn of the event loop later, as a socket would deliver them.
 */
export class InMemoryClientEnd {
  onreceive: ReceiveHandler = null
  onclose: CloseHandler = null
  private server: InMemoryTransport | null = null
  private readonly request: ConnectRequest
  private readonly headers: Record<string, string>

  constructor (request: ConnectRequest, headers: Record<string, string>) {
    this.request = request
    this.headers = headers
  }

  /** Called by the client with the connect URL (`?id=<token>`); the server half is attached by the route. */
  async connect (url: string): Promise<void> {
    const key = randomBytes(24).toString('base64url')
    waiting.set(key, this)
    try {
      const response = await this.request(url, { ...this.headers, [INJECT_HEADER]: key })
      if (this.server === null) {
        throw new Error(`fastify-signalr inject: connect failed with status ${response.statusCode}: ${response.body}`)
      }
    } finally {
      waiting.delete(key)
    }
  }

  /** The route created the server half for this client. */
  pair (server: InMemoryTransport): void {
    this.server = server
  }

  send (data: string | ArrayBuffer | Uint8Array): Promise<void> {
    const server = this.server
    if (server === null) return Promise.reject(new Error('fastify-signalr inject: the connection is not open'))
    // Copied: the client may reuse its buffer, and the server keeps partial records.
    const bytes = typeof data === 'string' ? Buffer.from(data, 'utf8') : Buffer.from(new Uint8Array(data as ArrayBuffer))
    server.fromClient(bytes)
    return RESOLVED
  }

  stop (): Promise<void> {
    const server = this.server
    if (server !== null) server.clientStopped()
    else this.closed(undefined)
    return RESOLVED
  }

  /** Server half to client: one record batch, as text or binary like the negotiated format. */
  deliver (data: Buffer, binary: boolean): void {
    if (binary) this.onreceive?.(data.buffer.slice(data.byteOffset, data.byteOffset + data.length) as ArrayBuffer)
    else this.onreceive?.(data.toString('utf8'))
  }

  closed (error: Error | undefined): void {
    this.server = null
    const onclose = this.onclose
    if (onclose !== null) onclose(error)
  }
}

/**
 * In-memory transport (`app.signalr.inject`): the server half of a pair with
 * an official client in the same process. No socket and no port; everything
 * else — handshake, protocol, dispatcher, lifetime manager — is the real code.
 * Delivery is deferred with setImmediate (first in, first out) so neither side
 * re-enters the other, as with a real network.
 */
export class InMemoryTransport implements Transport {
  readonly kind = 'InMemory' as const
  readonly transferFormats = FORMATS
  /** Pings flow so the client's server timeout behaves as on a socket. */
  readonly needsKeepAlive = true
  readonly lingersAfterClose = false
  private owner: TransportOwner | null = null
  private readonly client: InMemoryClientEnd
  private binary = false
  private pending = 0
  private drainRequested = false
  private paused: Buffer[] | null = null
  private closed = false

  constructor (client: InMemoryClientEnd) {
    this.client = client
    client.pair(this)
  }

  attach (owner: TransportOwner): void {
    this.owner = owner
  }

  setBinary (binary: boolean): void {
    this.binary = binary
  }

  send (data: Buffer): void {
    if (this.closed) return
    const binary = this.binary
    this.pending += data.length
    setImmediate(() => {
      this.pending -= data.length
      this.client.deliver(data, binary)
      if (this.pending === 0 && this.drainRequested) {
        this.drainRequested = false
        this.owner?.onTransportDrain()
      }
    })
  }

  get bufferedAmount (): number {
    return this.pending
  }

  waitForDrain (): void {
    if (this.pending === 0 || this.closed) setImmediate(() => this.owner?.onTransportDrain())
    else this.drainRequested = true
  }

  pause (): void {
    if (this.paused === null) this.paused = []
  }

  resume (): void {
    const held = this.paused
    if (held === null) return
    this.paused = null
    for (const bytes of held) this.owner?.onTransportData(bytes)
  }

  /** Ends after what was sent reaches the client (the deliveries before it run first). */
  close (): void {
    if (this.closed) return
    this.closed = true
    setImmediate(() => { this.client.closed(undefined) })
  }

  whenClosed (): Promise<void> {
    return RESOLVED
  }

  fromClient (bytes: Buffer): void {
    if (this.closed) return
    setImmediate(() => {
      if (this.closed) return
      if (this.paused !== null) this.paused.push(bytes)
      else this.owner?.onTransportData(bytes)
    })
  }

  /** The client called stop(): the connection ends cleanly, then the client hears its close. */
  clientStopped (): void {
    if (this.closed) return
    setImmediate(() => {
      if (this.closed) return
      this.owner?.onTransportClose(undefined)
      this.close()
    })
  }
}
