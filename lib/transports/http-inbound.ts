import type { TransportOwner } from './transport.js'
import { inboundLeaveChannel, inboundPauseChannel } from '../diagnostics.js'

/**
 * POSTs of one connection that may wait for their turn (bodies unread) behind
 * the one being taken. The official clients never send two at once; more than
 * this many waiting is a client that ignores backpressure, and is refused.
 */
export const MAX_WAITING_SENDS = 16

/**
 * Bytes a paused connection still takes from POSTs before it makes them wait,
 * as ASP.NET's transport pipe does (TransportMaxBufferSize, 64 KiB): a small
 * message sent while a long invocation runs is answered at once instead of
 * holding its POST (the official client gives up on a POST after 100 s).
 */
export const PAUSED_ALLOWANCE = 64 * 1024

/**
 * Client-to-server data of the HTTP transports (SSE and long polling), which
 * arrives as POST bodies. One POST at a time has the turn: its body is read
 * and handed to the connection. Once a paused connection holds
 * `PAUSED_ALLOWANCE` bytes, the POST is answered only when it resumes, and
 * later POSTs wait for the turn with their bodies unread; so a paused
 * connection holds at most the allowance plus one body (the official client
 * sends one POST at a time anyway: this is its backpressure, like a paused
 * WebSocket).
 */
export class HttpInbound {
  private paused = false
  private closed = false
  /** The connection's bytes received but not yet taken. */
  private readonly buffered: () => number
  private waiters: Array<() => void> = []
  /** The POST that has the turn, by the callback that granted it. */
  private holder: (() => void) | null = null
  private queue: Array<() => void> = []

  pause (): void {
    this.paused = true
    if (inboundPauseChannel.hasSubscribers) inboundPauseChannel.publish({ inbound: this })
  }

  /** The connection asked to stop reading (backpressure); what POSTs it still takes is bounded by the allowance. */
  get isPaused (): boolean {
    return this.paused
  }

  constructor (buffered: () => number) {
    this.buffered = buffered
  }

  resume (): void {
    this.paused = false
    this.release()
    // Decided once the connection has drained what it could (it resumes
    // first, then drains, and may pause again with most of the inbox left).
    if (this.queue.length > 0) queueMicrotask(() => { this.passTurn() })
  }

  /**
   * A POST arrived: `grant` is called when its body may be read (at once when
   * no other POST has the turn and the connection takes more). False when
   * too many already wait: refuse it.
   */
  enqueue (grant: () => void): boolean {
    if (this.closed) {
      grant()
      return true
    }
    if (this.queue.length >= MAX_WAITING_SENDS) return false
    this.queue.push(grant)
    this.passTurn()
    return true
  }

  /** The POST `grant` was queued for is answered or gone: pass the turn on (or drop it from the queue). */
  leave (grant: () => void): void {
    if (this.holder === grant) {
      this.holder = null
      this.passTurn()
    } else {
      const index = this.queue.indexOf(grant)
      if (index !== -1) this.queue.splice(index, 1)
    }
    if (inboundLeaveChannel.hasSubscribers) inboundLeaveChannel.publish({ inbound: this })
  }

  /** A paused connection that holds its allowance takes nothing more until it resumes. */
  private get full (): boolean {
    return this.paused && this.buffered() >= PAUSED_ALLOWANCE
  }

  /**
   * The next POST may read its body once the last one is done and the
   * connection takes more: a POST that gave up (aborted) while its messages
   * still wait in the inbox does not let another body in.
   */
  private passTurn (): void {
    if (this.holder !== null || this.full) return
    const next = this.queue.shift()
    if (next === undefined) return
    this.holder = next
    next()
  }

  /** POSTs waiting for their turn (bodies unread). */
  get waiting (): number {
    return this.queue.length
  }

  /** Hands `body` to the connection; resolves when the POST may be answered. */
  deliver (owner: TransportOwner | null, body: Buffer): Promise<void> | undefined {
    owner?.onTransportData(body)
    if (this.closed || !this.full) return undefined
    return new Promise((resolve) => { this.waiters.push(resolve) })
  }

  /** Lets every waiting POST finish (on resume). */
  release (): void {
    const waiters = this.waiters
    if (waiters.length === 0) return
    this.waiters = []
    for (const resolve of waiters) resolve()
  }

  /** The transport closed: nothing waits any more (the POSTs are answered as for a closed connection). */
  close (): void {
    this.closed = true
    this.release()
    const queued = this.queue
    this.queue = []
    this.holder = null
    for (const grant of queued) grant()
  }
}

/** What SSE and long polling share: the owner, and client data arriving as POST bodies. */
export abstract class HttpTransportBase {
  owner: TransportOwner | null = null
  readonly inbound = new HttpInbound(() => this.owner?.bufferedInboundBytes ?? 0)

  attach (owner: TransportOwner): void {
    this.owner = owner
  }

  /** Both HTTP transports carry whatever the protocol produced; nothing to switch. */
  setBinary (): void {}

  pause (): void {
    this.inbound.pause()
  }

  resume (): void {
    this.inbound.resume()
  }

  /** A POST body from the client; resolves when the POST may be answered. */
  receive (body: Buffer): Promise<void> | undefined {
    return this.inbound.deliver(this.owner, body)
  }
}
