import type { Duplex } from 'node:stream'
import type { FastifyBaseLogger } from 'fastify'
import type { WebSocket } from 'ws'
import type { SerializedMessage } from '../lifetime/serialized-message.js'
import type { HubProtocol, TransferFormat } from '../protocol/hub-protocol.js'
import type { Transport, TransportOwner } from './transport.js'
import { encodeFrame, encodeRecordsFrame, encodeTextFrame, joinRecords } from './websocket-frame.js'
import { logSocketError } from './websocket-upgrade.js'

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

/**
 * The frames of the last first record sent, by type: every connection's
 * first record is the same handshake answer, so its frame is built once and
 * the same bytes are written to every socket (a write never changes them).
 */
let firstRecord: Buffer | null = null
const firstFrames: [Buffer | null, Buffer | null] = [null, null]

function firstFrame (data: Buffer, binary: boolean): Buffer {
  if (data !== firstRecord) {
    firstRecord = data
    firstFrames[0] = firstFrames[1] = null
  }
  const index = binary ? 1 : 0
  return firstFrames[index] ??= encodeFrame(data, binary)
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

/**
 * Makes ws answer a client's close frame with 1000 (see receiverOnConclude).
 * ws has no public hook for it: its frame reader announces the close frame
 * with a 'conclude' event, and ours must run first. Feature-detected, and
 * pinned by test/transports/websocket-direct.test.ts; without it, ws echoes
 * the client's code, which only @aspnet/signalr 1.0 minds. Returns whether it
 * took.
 */
export function answerClientCloseWithNormal (socket: WebSocket): boolean {
  const receiver = (socket as unknown as { _receiver?: Partial<NodeJS.EventEmitter> & { [kSocket]?: WebSocket } })._receiver
  if (receiver === undefined || receiver === null || typeof receiver.prependListener !== 'function' ||
    typeof receiver.listenerCount !== 'function' || receiver.listenerCount('conclude') === 0) return false
  receiver[kSocket] = socket
  receiver.prependListener('conclude', receiverOnConclude)
  return true
}

/**
 * The socket our own frames may be written to, or null: then everything goes
 * through `socket.send`. Only public APIs: `raw` is the socket we completed
 * the upgrade on (so it is the one ws writes to), and `extensions` is what
 * was negotiated. Without an extension ws's sender transforms nothing and
 * writes each frame to the socket as it is sent (it queues only while
 * compressing, or reading a Blob, which we never send), so frames written
 * here and through ws (pongs, the close frame, large messages) keep their
 * order. That last property is ws's behaviour rather than its documented
 * API: test/transports/websocket-direct.test.ts fails if it changes.
 */
export function directSocket (socket: WebSocket, raw: Duplex | null): Duplex | null {
  if (raw === null || typeof raw.write !== 'function' || socket.extensions !== '') return null
  return raw
}

function socketOnError (this: OwnedSocket, error: Error): void {
  // 'close' follows every 'error'. Without a logger @fastify/websocket's errorHandler reports it.
  const log = this[kOwner].log
  if (log !== null) logSocketError(log, error, this)
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
   * The network socket ws writes to, when frames we build may go straight to
   * it (see directSocket); otherwise every write goes through `socket.send`.
   */
  private readonly direct: Duplex | null
  /** Where socket errors are reported; null when @fastify/websocket's errorHandler does it. */
  readonly log: FastifyBaseLogger | null
  /** The turn of the last write: further records in the same turn wait for its end. */
  private turn = 0
  /** Listed in `collecting` for the end of this turn. */
  private listed = false
  /** Records collected in this turn, in order; made on first use and reused. */
  private pending: Array<Buffer | string> | null = null
  private pendingLengths: number[] | null = null
  private pendingBytes = 0

  /**
   * `raw`: the network socket the upgrade was completed on (ws writes its
   * frames there), or null when it is not known.
   */
  constructor (socket: WebSocket, raw: Duplex | null = null, log: FastifyBaseLogger | null = null) {
    this.socket = socket as OwnedSocket
    this.socket[kOwner] = this
    this.direct = directSocket(socket, raw)
    this.log = log
    socket.on('message', socketOnMessage as (this: WebSocket, data: Buffer) => void)
    socket.on('close', socketOnClose as (this: WebSocket, code: number) => void)
    socket.on('error', socketOnError as (this: WebSocket, error: Error) => void)
    answerClientCloseWithNormal(socket)
  }

  /** Whether frames are written straight to the network socket (pinned by test/transports/websocket-direct.test.ts). */
  get writesDirectly (): boolean {
    return this.direct !== null
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
    // As in bufferedAmount, without the records collected (there are none at a turn's first write).
    const direct = this.direct
    return (direct !== null ? direct.writableLength : this.socket.bufferedAmount) > 0
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
    const direct = this.direct
    if (direct !== null) direct.write(encodeRecordsFrame(records, start, end, length, this.binary))
    else this.socket.send(joinRecords(records, start, end, length), this.frameOptions)
  }

  send (data: Buffer): void {
    if (this.closed || this.socket.readyState !== 1 /* OPEN */) return
    if (this.collects()) {
      this.collect(data, data.length)
      return
    }
    const direct = data.length <= DIRECT_COPY_LIMIT ? this.direct : null
    if (direct !== null) direct.write(encodeFrame(data, this.binary))
    else this.socket.send(data, this.frameOptions)
  }

  /** Only for a connection's first record (the handshake answer): nothing was collected before it. */
  sendNow (data: Buffer): void {
    if (this.closed || this.socket.readyState !== 1 /* OPEN */) return
    const direct = data.length <= DIRECT_COPY_LIMIT ? this.direct : null
    if (direct !== null) direct.write(firstFrame(data, this.binary))
    else this.socket.send(data, this.frameOptions)
  }

  sendText (text: string): void {
    if (this.closed || this.socket.readyState !== 1 /* OPEN */) return
    if (this.collects()) {
      this.collect(text, Buffer.byteLength(text, 'utf8'))
      return
    }
    // Short strings only: their UTF-8 length is at most 3 bytes a character.
    const direct = text.length <= DIRECT_COPY_LIMIT / 3 ? this.direct : null
    if (direct !== null) direct.write(encodeTextFrame(text))
    else this.socket.send(text, this.frameOptions)
  }

  sendShared (message: SerializedMessage, protocol: HubProtocol): void {
    if (this.closed || this.socket.readyState !== 1 /* OPEN */) return
    // Joining others, the record is copied from the payload the frame cache holds anyway.
    if (this.collects()) {
      const payload = message.encode(protocol)
      this.collect(payload, payload.length)
      return
    }
    const direct = this.direct
    if (direct !== null) direct.write(message.framed(protocol, encodeFrame))
    else this.socket.send(message.encode(protocol), this.frameOptions)
  }

  /**
   * Collected records count as queued: backpressure sees them before they are
   * written. Writing directly, ws's sender never queues (see directSocket), so
   * the network socket's own queue is ws's bufferedAmount without the hop
   * through its sender: one object fewer touched per receiver of a broadcast.
   */
  get bufferedAmount (): number {
    const direct = this.direct
    return (direct !== null ? direct.writableLength : this.socket.bufferedAmount) + this.pendingBytes
  }

  waitForDrain (): void {
    // ws emits no 'drain' of its own; the underlying net.Socket does.
    const raw = this.direct as (Duplex & { [kOwner]?: WebSocketTransport, writableNeedDrain?: boolean }) | null
    const flushed = this.pendingBytes > 0
    if (flushed) this.flush()
    // Collected records the socket took at once leave nothing to drain: no 'drain' would come.
    if (raw === null || this.closed || (flushed && !raw.writableNeedDrain)) {
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
