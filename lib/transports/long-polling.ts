import type { FastifyReply } from 'fastify'
import type { TransferFormat } from '../protocol/hub-protocol.js'
import { pollHeldChannel } from '../diagnostics.js'
import { HttpTransportBase } from './http-inbound.js'
import type { Transport } from './transport.js'

const FORMATS: readonly TransferFormat[] = Object.freeze(['Text', 'Binary'])
const EMPTY = Buffer.alloc(0)
/** ASP.NET sends these on every long-polling GET, the first one included. */
export const NO_CACHE = {
  'cache-control': 'no-cache, no-store',
  pragma: 'no-cache',
  expires: 'Thu, 01 Jan 1970 00:00:00 GMT'
}

/**
 * Long polling: each GET takes everything queued (whole records only) or waits
 * for data up to `longPollTimeout`; client-to-server records come as POSTs.
 * Rules from ASP.NET: one outstanding poll per connection (a newer poll ends
 * the older with 204), 204 once the connection is over, and a connection that
 * stops polling is disposed after the disconnect timeout.
 */
export class LongPollingTransport extends HttpTransportBase implements Transport {
  readonly kind = 'LongPolling' as const
  readonly transferFormats = FORMATS
  /** Polls are their own keep-alive: neither side sends pings. */
  readonly needsKeepAlive = false
  /** Stays reachable after closing so the last poll gets its data and a 204, not a 404. */
  readonly lingersAfterClose = true
  private queue: Buffer[] = []
  private queued = 0
  private poll: FastifyReply | null = null
  private pollStartedAt = 0
  /** When the last poll ended (or the transport started): the idle clock. */
  private idleSince: number
  private drainRequested = false
  private closed = false
  /** The heartbeat's time (the connection store), so idle time is measured on the plugin's one clock. */
  private readonly clock: { readonly now: number }

  constructor (clock: { readonly now: number }) {
    super()
    this.clock = clock
    this.idleSince = clock.now
  }

  send (data: Buffer): void {
    if (this.closed) return
    this.queue.push(data)
    this.queued += data.length
    if (this.poll !== null) this.flush(this.poll)
  }

  get bufferedAmount (): number {
    return this.queued
  }

  waitForDrain (): void {
    if (this.queued === 0 || this.closed) this.owner?.onTransportDrain()
    else this.drainRequested = true
  }

  whenClosed (): Promise<void> {
    return Promise.resolve()
  }

  /** A GET poll arrived. Returns the reply, which is sent now or once data comes. */
  handlePoll (reply: FastifyReply, now: number): FastifyReply {
    const previous = this.poll
    if (previous !== null) {
      // A newer poll wins; the older one ends with 204 (ASP.NET does the same).
      this.poll = null
      previous.code(204).headers(NO_CACHE).send()
    }
    if (this.queued > 0) return this.flush(reply)
    if (this.closed) return reply.code(204).headers(NO_CACHE).send()
    this.poll = reply
    this.pollStartedAt = now
    // A response closes once: on(), not once(), which wraps every listener.
    reply.raw.on('close', () => {
      if (this.poll === reply) {
        this.poll = null
        this.idleSince = this.clock.now
      }
    })
    if (pollHeldChannel.hasSubscribers) pollHeldChannel.publish({ transport: this })
    return reply
  }

  /** Heartbeat: end a poll held too long, and report a client that stopped polling. */
  tick (now: number, pollTimeout: number, disconnectTimeout: number): void {
    const poll = this.poll
    if (poll !== null) {
      if (now - this.pollStartedAt >= pollTimeout) {
        this.poll = null
        this.idleSince = now
        poll.code(200).headers(NO_CACHE).type('text/plain').send(EMPTY)
      }
      return
    }
    if (!this.closed && now - this.idleSince >= disconnectTimeout) {
      this.closed = true
      this.inbound.close()
      this.owner?.onTransportClose(new Error('The long polling client stopped polling.'))
    }
  }

  /** DELETE from the client: the connection ends cleanly. */
  terminate (): void {
    if (this.closed) return
    this.close()
    this.owner?.onTransportClose(undefined)
  }

  close (): void {
    if (this.closed) return
    this.closed = true
    this.inbound.close()
    const poll = this.poll
    if (poll !== null) {
      this.poll = null
      if (this.queued > 0) this.flush(poll)
      else poll.code(204).headers(NO_CACHE).send()
    }
  }

  private flush (reply: FastifyReply): FastifyReply {
    const body = this.queue.length === 1 ? this.queue[0]! : Buffer.concat(this.queue, this.queued)
    this.queue = []
    this.queued = 0
    this.poll = null
    this.idleSince = this.clock.now
    reply.code(200).headers(NO_CACHE).type('application/octet-stream').send(body)
    if (this.drainRequested) {
      this.drainRequested = false
      this.owner?.onTransportDrain()
    }
    return reply
  }
}
