import type { RecordFraming } from './hub-protocol.js'
import { PendingBytes, type PendingMemory } from './pending-bytes.js'
import { messageTooLarge, ProtocolError } from './protocol-error.js'

/** The client refuses lengths of 2 GiB and more (5 varint bytes, the last at most 7). */
const MAX_LENGTH = 0x7fffffff

/** The VarInt length prefix of a binary message: 7 bits a byte, low group first. */
export function writeLengthPrefix (length: number): Buffer {
  const out = Buffer.allocUnsafe(lengthPrefixSize(length))
  putLengthPrefix(out, length)
  return out
}

/** How many bytes the VarInt prefix of `length` takes. */
export function lengthPrefixSize (length: number): number {
  let size = 1
  for (let rest = Math.floor(length / 128); rest > 0; rest = Math.floor(rest / 128)) size++
  return size
}

/** Writes the VarInt prefix of `length` at the start of `out`; returns where the body starts. */
export function putLengthPrefix (out: Buffer, length: number): number {
  let at = 0
  let rest = length
  while (rest >= 128) {
    out[at++] = (rest % 128) | 0x80
    rest = Math.floor(rest / 128)
  }
  out[at++] = rest
  return at
}

/** Prefixes `payload` with its length in one buffer. */
export function frameBinary (payload: Uint8Array): Buffer {
  const out = Buffer.allocUnsafe(lengthPrefixSize(payload.length) + payload.length)
  out.set(payload, putLengthPrefix(out, payload.length))
  return out
}

/** A prefix is at most 5 bytes: 7 bits each, up to 2^31 - 1. */
const MAX_PREFIX_BYTES = 5

/** Where the body starts after the prefix `readPrefix` last read (a variable, not an object per message). */
let bodyStart = 0

/** The length in the prefix at `offset`, its end in `bodyStart`; -1 while the prefix itself is cut. */
function readPrefix (data: Buffer, offset: number): number {
  let length = 0
  let shift = 0
  let cursor = offset
  while (cursor < data.length) {
    const byte = data[cursor++]!
    if (shift === 28 && byte > 7) throw new ProtocolError('Messages bigger than 2GB are not supported.')
    length += (byte & 0x7f) * 2 ** shift
    if ((byte & 0x80) === 0) {
      bodyStart = cursor
      return length
    }
    shift += 7
    if (shift > 28) throw new ProtocolError('Cannot read message size.')
  }
  return -1
}

/**
 * Splits a byte stream into length-prefixed messages. A message may span
 * chunks; the size limit is checked on the prefix, before the body is buffered.
 */
export class BinaryMessageSplitter {
  /**
   * The unfinished message (prefix included) in one growable buffer: each
   * byte is copied once, plus the doublings, however it is chunked. Messages
   * that arrive whole are handed out as views into the chunk, without a copy.
   */
  private readonly pending: PendingBytes
  private readonly maxMessageSize: number

  constructor (maxMessageSize: number | null) {
    this.maxMessageSize = maxMessageSize ?? MAX_LENGTH
    this.pending = new PendingBytes(this.maxMessageSize + MAX_PREFIX_BYTES)
  }

  /**
   * Appends each whole message body of `chunk` to `out`: views into the chunk
   * or into a buffer the splitter no longer writes to.
   */
  split (chunk: Buffer, out: Buffer[]): void {
    try {
      let offset = this.pending.length > 0 ? this.finishPending(chunk, out) : 0
      // The final size of a message cut at the end of the chunk, once its prefix is whole.
      let total: number | undefined
      while (offset < chunk.length) {
        const length = readPrefix(chunk, offset)
        if (length === -1) break
        this.checkLength(length)
        const end = bodyStart + length
        if (end > chunk.length) {
          total = end - offset
          break
        }
        out.push(chunk.subarray(bodyStart, end))
        offset = end
      }
      if (offset < chunk.length) this.pending.append(chunk.subarray(offset), total)
    } catch (err) {
      // Nothing of a refused message stays buffered.
      this.pending.reset()
      throw err
    }
  }

  /** Completes the pending message from the start of `chunk`; returns how many bytes of it were used. */
  private finishPending (chunk: Buffer, out: Buffer[]): number {
    const pending = this.pending
    let used = 0
    let length = readPrefix(pending.bytes(), 0)
    // A cut prefix holds no body bytes yet: finish it byte by byte (at most 4 more).
    while (length === -1 && used < chunk.length) {
      pending.append(chunk.subarray(used, ++used), MAX_PREFIX_BYTES)
      length = readPrefix(pending.bytes(), 0)
    }
    if (length === -1) return used
    this.checkLength(length)
    const start = bodyStart
    const total = start + length
    const take = Math.min(chunk.length - used, total - pending.length)
    pending.append(chunk.subarray(used, used + take), total)
    used += take
    if (pending.length === total) {
      out.push(pending.bytes().subarray(start))
      // Dropped, not reused: the view just handed out must stay intact.
      pending.reset()
    }
    return used
  }

  private checkLength (length: number): void {
    if (length > this.maxMessageSize) throw messageTooLarge(this.maxMessageSize)
  }

  get hasPartialMessage (): boolean {
    return this.pending.length > 0
  }

  /** What the unfinished message costs (tests and diagnostics). */
  get memory (): PendingMemory {
    return this.pending.memory
  }
}

/** Messages prefixed by their VarInt length, handed out as Buffers (the MessagePack protocol's framing). */
export const lengthPrefixFraming: RecordFraming<Buffer> = Object.freeze({
  createSplitter (maxRecordSize: number | null) {
    return new BinaryMessageSplitter(maxRecordSize)
  }
})
