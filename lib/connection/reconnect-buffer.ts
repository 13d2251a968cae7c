import { MessageType, type HubMessage } from '../protocol/messages.js'

/** Messages that count for stateful reconnect (ping, close, ack and sequence do not). */
export function isTrackable (message: HubMessage): boolean {
  return message.type <= MessageType.CancelInvocation
}

/**
 * Stateful reconnect bookkeeping for one connection (SignalR's MessageBuffer):
 * what we sent and the client has not acknowledged yet, bounded in bytes, and
 * which of the client's messages we already took, so a replay after a
 * reconnect loses nothing and duplicates nothing.
 */
export class ReconnectBuffer {
  private readonly limit: number
  private sent: Buffer[] = []
  private head = 0
  /** Sequence id of `sent[head]`. */
  private firstId = 1
  private bytes = 0
  private totalSent = 0
  /** Trackable client messages taken so far (the id of the last one). */
  private received = 0
  /** Sequence id the next client message carries. */
  private nextIncoming = 1
  private ackedIncoming = 0

  constructor (limit: number) {
    this.limit = limit
  }

  /** Bytes sent but not acknowledged. */
  get unackedBytes (): number {
    return this.bytes
  }

  get isFull (): boolean {
    return this.bytes >= this.limit
  }

  /** Keeps an outgoing trackable message until the client acknowledges it. */
  track (bytes: Buffer): void {
    this.sent.push(bytes)
    this.bytes += bytes.length
    this.totalSent++
  }

  /** The client acknowledged everything up to `sequenceId`. Returns true when bytes were freed. */
  ack (sequenceId: number): boolean {
    let freed = false
    while (this.head < this.sent.length && this.firstId <= sequenceId) {
      this.bytes -= this.sent[this.head]!.length
      this.sent[this.head++] = undefined as unknown as Buffer
      this.firstId++
      freed = true
    }
    if (this.head === this.sent.length) {
      this.sent = []
      this.head = 0
    }
    return freed
  }

  /** The Sequence id we announce after a reconnect: the oldest unacknowledged message. */
  get replayStart (): number {
    return this.head < this.sent.length ? this.firstId : this.totalSent + 1
  }

  /** The unacknowledged messages, oldest first. */
  unacked (): Buffer[] {
    return this.sent.slice(this.head)
  }

  /**
   * The client announced where its replay starts. An id beyond what we have
   * seen means it lost messages we never got: fatal, as in ASP.NET.
   */
  resetIncoming (sequenceId: number): boolean {
    if (sequenceId > this.received + 1) return false
    this.nextIncoming = sequenceId
    return true
  }

  /** Numbers an incoming trackable message; false for a duplicate of one already taken. */
  acceptIncoming (): boolean {
    const id = this.nextIncoming++
    if (id <= this.received) return false
    this.received = id
    return true
  }

  /** The Ack to send, or 0 when nothing new arrived since the last one. */
  takeAck (): number {
    if (this.received === this.ackedIncoming) return 0
    this.ackedIncoming = this.received
    return this.received
  }
}
