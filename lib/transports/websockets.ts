import type { FastifyRequest } from 'fastify'
import type { WebSocket } from 'ws'
import type { Socket } from 'node:net'
import type { SerializedMessage } from '../lifetime/serialized-message.js'
import type { HubProtocol, TransferFormat } from '../protocol/hub-protocol.js'
import type { Transport, TransportOwner } from './transport.js'
import { encodeFrame, encodeRecordsFrame, encodeTextFrame, joinRecords } from './websocket-frame.js'

const kOwner = Symbol('fastify-signalr.transportOwner')
const kSocket = Symbol('fastify-signalr.socket')
const TEXT_FRAME = { binary: false }
const BINARY_FRAME = { binary: true }
const FORMATS: readonly TransferFormat[] = Object.freeze(['Text', 'Binary'])
/** ASP.NET: 1000 for a normal close; 1011 when sending failed. */
const CLOSE_NORMAL = 1000
const CLOSE_ABNORMAL = 1006
/** ASP.NET's WebSocketOptions.CloseTimeout: how long to wait for the peer's close frame. */
const CLOSE_TIMEOUT = 5000

type OwnedSocket = WebSocket & { [kOwner]: WebSocketTransport }

/** The parts of ws's Sender the direct-write path relies on (checked at run time). */
interface WsSender {
  _state: number
  _queue: unknown[]
  _socket: Socket
}

/** Payloads up to this size are copied into one frame buffer: one write beats ws's header + payload pair. */
const DIRECT_COPY_LIMIT = 16 * 1024

/**
 * Records joined into one frame carry at most this many bytes together (a
 * single larger record goes alone); a record that would not fit sends the
 * frame collected so far at once.
 */
const COALESCE_LIMIT = 64 * 1024

/**
 * The turn of the event loop, as far as writing cares: it ends with one
 * setImmediate, shared by every connection, scheduled by the first write of
 * the turn. A transport remembers the turn of its last write (a number, so an
 * idle connection has nothing to reset), and only transports that collected
 * records are listed for the flush.
 */
let currentTurn = 1
let turnScheduled = false
let collecting: WebSocketTransport[] = []
let spareCollecting: WebSocketTransport[] = []

function scheduleTurnEnd (): void {
  if (turnScheduled) return
  turnScheduled = true
  setImmediate(endTurn)
}

function endTurn (): void {
  turnScheduled = false
  currentTurn++
  // Swapped first: a transport that writes while another flushes belongs to the next turn.
  const ended = collecting
  collecting = spareCollecting
  spareCollecting = ended
  for (let i = 0; i < ended.length; i++) ended[i]!.flushCollected()
  ended.length = 0
}

/** ws's default, kept when messages may be of any size. */
const WS_DEFAULT_FRAGMENTS = 16 * 1024
/** The smallest pieces a well-behaved client cuts a message into (.NET clients send 4 KiB pipe segments). */
const CLIENT_FRAGMENT_SIZE = 4096

/**
 * How many fragments one WebSocket message may come in. ws keeps each
 * fragment as a Buffer (about 100 bytes of bookkeeping) until the message is
 * whole, so its default of 16 384 lets one-byte fragments cost a hundred times
 * their payload. Enough for a payload-sized message in 4 KiB pieces.
 */
export function fragmentLimit (maxPayload: number): number {
  return maxPayload === 0 ? WS_DEFAULT_FRAGMENTS : Math.max(64, Math.ceil(maxPayload / CLIENT_FRAGMENT_SIZE))
}

/**
 * The ws server options when the plugin registers @fastify/websocket itself.
 * UTF-8 is checked by the text framing instead (per record, for every
 * transport), so a bad text frame ends in SignalR's Close message rather than
 * a dropped socket and an error log.
 */
export function webSocketServerOptions (maxPayload: number): { maxPayload: number, maxFragments: number, skipUTF8Validation: boolean } {
  return { maxPayload, maxFragments: fragmentLimit(maxPayload), skipUTF8Validation: true }
}

/** Raises the fragment limit of a ws server whose payload limit was raised (0 stays unlimited). */
export function raiseFragmentLimit (options: { maxFragments?: number }, maxPayload: number): void {
  const current = options.maxFragments
  if (current !== undefined && current !== 0) options.maxFragments = Math.max(current, fragmentLimit(maxPayload))
}

/**
 * @fastify/websocket's errorHandler when the plugin registers it. ws reports a
 * client's protocol violation (too many fragments, too large, bad opcode) as
 * an error with a `WS_ERR_*` code and is already closing the socket with the
 * matching close code: a hostile client must not be able to fill the log, so
 * that is one debug line. Anything else is logged and the socket dropped, as
 * @fastify/websocket does by default.
 */
export function onWebSocketError (error: Error, socket: WebSocket, request: FastifyRequest): void {
  const code = (error as { code?: unknown }).code
  if (typeof code === 'string' && code.startsWith('WS_ERR_')) {
    request.log.debug({ code, reason: error.message }, 'websocket protocol error from the client')
    return
  }
  request.log.error(error)
  socket.terminate()
}

function senderOf (socket: WebSocket): WsSender | null {
  const sender = (socket as unknown as { _sender?: Partial<WsSender> })._sender
  if (sender === undefined || typeof sender._state !== 'number' || !Array.isArray(sender._queue) ||
    sender._socket === undefined || typeof sender._socket.write !== 'function') return null
  return sender as WsSender
}

// Listeners are module-level and find their transport through the socket, so
// no closure is allocated per connection or per message.
function socketOnMessage (this: OwnedSocket, data: Buffer | ArrayBuffer | Buffer[]): void {
  const transport = this[kOwner]
  // Parsing never depends on the frame type: the handshake comes as text even for MessagePack.
  const bytes = Buffer.isBuffer(data) ? data : Array.isArray(data) ? Buffer.concat(data) : Buffer.from(data)
  transport.owner?.onTransportData(bytes)
}

function socketOnClose (this: OwnedSocket, code: number): void {
  const transport = this[kOwner]
  // Any close frame from the client counts as graceful (the official client sends none: 1005).
  const error = code === CLOSE_ABNORMAL
    ? new Error('The remote party closed the WebSocket connection without completing the close handshake.')
    : undefined
  transport.closed = true
  transport.flushCollected()
  if (transport.closeTimer !== null) {
    clearTimeout(transport.closeTimer)
    transport.closeTimer = null
  }
  transport.owner?.onTransportClose(error)
  transport.resolveClosed?.()
}

/**
 * Runs before ws echoes a client's close frame: ASP.NET answers every client
 * close with 1000, and @aspnet/signalr 1.0 reports anything else (ws would
 * echo the client's code, or no code: 1005) as an error from stop().
 */
function receiverOnConclude (this: { [kSocket]?: WebSocket }): void {
  const socket = this[kSocket]
  if (socket !== undefined && socket.readyState === 1 /* OPEN */) socket.close(CLOSE_NORMAL)
}

function socketOnError (this: OwnedSocket): void {
  // 'close' follows every 'error'; the listener only keeps the error from being thrown.
}

function rawSocketOnDrain (this: { [kOwner]?: WebSocketTransport }): void {
  const transport = this[kOwner]
  if (transport !== undefined) transport.owner?.onTransportDrain()
}

/** The WebSockets transport over a `ws` socket from @fastify/websocket. */
export class WebSocketTransport implements Transport {
  readonly kind = 'WebSockets' as const
  readonly transferFormats = FORMATS
  readonly needsKeepAlive = true
  readonly lingersAfterClose = false
  owner: TransportOwner | null = null
  closed = false
  closeTimer: NodeJS.Timeout | null = null
  resolveClosed: (() => void) | null = null
  private closedPromise: Promise<void> | null = null
  private readonly socket: OwnedSocket
  private frameOptions = TEXT_FRAME
  private binary = false
  /**
   * ws's sender, when its internals are as expected: then frames we build are
   * written straight to the socket while the sender is idle (nothing queued,
   * not compressing), which keeps ws's own ordering intact. Otherwise every
   * write goes through `socket.send`.
   */
  private readonly sender: WsSender | null
  /** The turn of the last write: further records in the same turn wait for its end. */
  private turn = 0
  /** Listed in `collecting` for the end of this turn. */
  private listed = false
  /** Records collected in this turn, in order; made on first use and reused. */
  private pending: Array<Buffer | string> | null = null
  private pendingLengths: number[] | null = null
  private pendingBytes = 0

  constructor (socket: WebSocket) {
    this.socket = socket as OwnedSocket
    this.socket[kOwner] = this
    this.sender = senderOf(socket)
    socket.on('message', socketOnMessage as (this: WebSocket, data: Buffer) => void)
    socket.on('close', socketOnClose as (this: WebSocket, code: number) => void)
    socket.on('error', socketOnError as (this: WebSocket) => void)
    const receiver = (socket as unknown as { _receiver?: NodeJS.EventEmitter & { [kSocket]?: WebSocket } })._receiver
    if (receiver !== undefined && typeof receiver.prependListener === 'function') {
      receiver[kSocket] = socket
      receiver.prependListener('conclude', receiverOnConclude)
    }
  }

  attach (owner: TransportOwner): void {
    this.owner = owner
  }

  setBinary (binary: boolean): void {
    // Collected records keep the frame type they were written for.
    if (this.pendingBytes > 0) this.flush()
    this.binary = binary
    this.frameOptions = binary ? BINARY_FRAME : TEXT_FRAME
  }

  private get idleSender (): WsSender | null {
    const sender = this.sender
    return sender !== null && sender._state === 0 && sender._queue.length === 0 ? sender : null
  }

  /**
   * Coalescing: the first record of a turn goes out at once (no added
   * latency on an idle connection); records that follow in the same turn, or
   * while the socket is still behind, are collected and leave together at
   * the end of the turn as one frame, one write.
   */
  private collects (): boolean {
    if (this.turn === currentTurn) return true
    this.turn = currentTurn
    scheduleTurnEnd()
    return this.socket.bufferedAmount > 0
  }

  private collect (record: Buffer | string, length: number): void {
    // A full frame leaves at once: what waits for the end of the turn stays bounded.
    if (this.pendingBytes > 0 && this.pendingBytes + length > COALESCE_LIMIT) this.flush()
    if (!this.listed) {
      this.listed = true
      collecting.push(this)
    }
    const pending = this.pending ??= []
    const lengths = this.pendingLengths ??= []
    pending.push(record)
    lengths.push(length)
    this.pendingBytes += length
  }

  /** At the end of the turn it collected in, and when the socket closes. */
  flushCollected (): void {
    this.listed = false
    if (this.pendingBytes > 0) this.flush()
  }

  /** Writes the collected records, joined into frames of up to COALESCE_LIMIT bytes. */
  private flush (): void {
    const pending = this.pending
    const lengths = this.pendingLengths
    if (pending === null || lengths === null || pending.length === 0) return
    const count = pending.length
    const open = !this.closed && this.socket.readyState === 1 /* OPEN */
    let start = open ? 0 : count
    while (start < count) {
      let end = start + 1
      let length = lengths[start]!
      while (end < count && length + lengths[end]! <= COALESCE_LIMIT) length += lengths[end++]!
      this.writeRecords(pending, start, end, length)
      start = end
    }
    pending.length = 0
    lengths.length = 0
    this.pendingBytes = 0
  }

  private writeRecords (records: Array<Buffer | string>, start: number, end: number, length: number): void {
    const first = records[start]!
    if (end - start === 1 && length > DIRECT_COPY_LIMIT) {
      this.socket.send(first, this.frameOptions)
      return
    }
    const sender = this.idleSender
    if (sender !== null) sender._socket.write(encodeRecordsFrame(records, start, end, length, this.binary))
    else this.socket.send(joinRecords(records, start, end, length), this.frameOptions)
  }

  send (data: Buffer): void {
    if (this.closed || this.socket.readyState !== 1 /* OPEN */) return
    if (this.collects()) {
      this.collect(data, data.length)
      return
    }
    const sender = data.length <= DIRECT_COPY_LIMIT ? this.idleSender : null
    if (sender !== null) sender._socket.write(encodeFrame(data, this.binary))
    else this.socket.send(data, this.frameOptions)
  }

  sendText (text: string): void {
    if (this.closed || this.socket.readyState !== 1 /* OPEN */) return
    if (this.collects()) {
      this.collect(text, Buffer.byteLength(text, 'utf8'))
      return
    }
    // Short strings only: their UTF-8 length is at most 3 bytes a character.
    const sender = text.length <= DIRECT_COPY_LIMIT / 3 ? this.idleSender : null
    if (sender !== null) sender._socket.write(encodeTextFrame(text))
    else this.socket.send(text, this.frameOptions)
  }

  sendShared (message: SerializedMessage, protocol: HubProtocol, payload: Buffer): void {
    if (this.closed || this.socket.readyState !== 1 /* OPEN */) return
    // Joining others, the record is copied from the payload the frame cache holds anyway.
    if (this.collects()) {
      this.collect(payload, payload.length)
      return
    }
    const sender = this.idleSender
    if (sender !== null) sender._socket.write(message.framed(protocol, encodeFrame))
    else this.socket.send(payload, this.frameOptions)
  }

  /** Collected records count as queued: backpressure sees them before they are written. */
  get bufferedAmount (): number {
    return this.socket.bufferedAmount + this.pendingBytes
  }

  waitForDrain (): void {
    // ws emits no 'drain' of its own; the underlying net.Socket does.
    const raw = (this.socket as unknown as { _socket?: Socket & { [kOwner]?: WebSocketTransport } })._socket
    const flushed = this.pendingBytes > 0
    if (flushed) this.flush()
    // Collected records the socket took at once leave nothing to drain: no 'drain' would come.
    if (raw === undefined || this.closed || (flushed && !raw.writableNeedDrain)) {
      this.owner?.onTransportDrain()
      return
    }
    raw[kOwner] = this
    raw.once('drain', rawSocketOnDrain)
  }

  pause (): void {
    if (!this.closed) this.socket.pause()
  }

  resume (): void {
    if (!this.closed) this.socket.resume()
  }

  whenClosed (): Promise<void> {
    if (this.socket.readyState === 3 /* CLOSED */) return Promise.resolve()
    return this.closedPromise ??= new Promise((resolve) => { this.resolveClosed = resolve })
  }

  close (): void {
    if (this.closed) return
    // What was collected goes out ahead of the close frame.
    if (this.pendingBytes > 0) this.flush()
    this.closed = true
    this.socket.close(CLOSE_NORMAL)
    // If the peer never answers the close frame, do not keep the socket forever.
    this.closeTimer = setTimeout(terminateIfOpen, CLOSE_TIMEOUT, this.socket)
    this.closeTimer.unref()
  }
}

function terminateIfOpen (socket: WebSocket): void {
  if (socket.readyState !== 3 /* CLOSED */) socket.terminate()
}
