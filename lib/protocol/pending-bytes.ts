const EMPTY = Buffer.alloc(0)
/** First allocation for a tail that starts small, so a byte-by-byte trickle does not regrow at once. */
const MIN_CAPACITY = 256

/** What an unfinished record holds on to, for tests and diagnostics. */
export interface PendingMemory {
  /** Bytes of unfinished records held. */
  buffered: number
  /** Bytes allocated to hold them (at most twice `buffered`, and never above the cap). */
  retained: number
  /** Buffers allocated since creation: one per doubling, so O(log n) per record. */
  allocations: number
  /** Bytes copied since creation: every received byte once, plus the doublings (under 2x). */
  copied: number
}

/**
 * The bytes of an unfinished record or message, in one growable buffer.
 *
 * A chunk list would cost a Buffer object (about 100 bytes) per chunk, which a
 * client trickling one byte per WebSocket frame turns into 100x amplification;
 * re-joining the list per chunk would be quadratic. Here each chunk is copied
 * once into a buffer that doubles, bounded by `cap`, so memory stays within 2x
 * of the bytes held and total work is linear.
 *
 * Views handed out by `bytes` stay valid until the next `append` after `reset`,
 * because `reset` drops the buffer instead of reusing it.
 */
export class PendingBytes {
  private buffer: Buffer = EMPTY
  private used = 0
  private allocations = 0
  private copied = 0

  /** `cap`: the most bytes that may ever be held (the caller refuses more before appending). */
  constructor (private readonly cap: number) {}

  get length (): number {
    return this.used
  }

  /**
   * Copies `part` in (the caller's buffer may be pooled and reused). `total`,
   * when the caller knows the final size (a length prefix), keeps the last
   * doubling from overshooting it; it is never allocated up front, so a
   * prefix alone does not make the server reserve the whole message.
   */
  append (part: Uint8Array, total = this.cap): void {
    const needed = this.used + part.length
    if (needed > this.buffer.length) this.grow(needed, Math.min(total, this.cap))
    this.buffer.set(part, this.used)
    this.used = needed
    this.copied += part.length
  }

  /** The held bytes, as a view. */
  bytes (): Buffer {
    return this.buffer.subarray(0, this.used)
  }

  /** Forgets the held bytes and releases the buffer. */
  reset (): void {
    this.buffer = EMPTY
    this.used = 0
  }

  get memory (): PendingMemory {
    return { buffered: this.used, retained: this.buffer.length, allocations: this.allocations, copied: this.copied }
  }

  private grow (needed: number, cap: number): void {
    const doubled = Math.max(this.buffer.length * 2, MIN_CAPACITY)
    // Not from Node's shared pool: a small pooled slice would pin the whole 8 KiB slab.
    const next = Buffer.allocUnsafeSlow(Math.max(needed, Math.min(doubled, cap)))
    this.buffer.copy(next, 0, 0, this.used)
    this.copied += this.used
    this.allocations++
    this.buffer = next
  }
}
