import { messageTooLarge, ProtocolError } from './protocol-error.js'

const EMPTY = Buffer.alloc(0)
/** The client refuses lengths of 2 GiB and more (5 varint bytes, the last at most 7). */
const MAX_LENGTH = 0x7fffffff

/** The VarInt length prefix of a binary message: 7 bits a byte, low group first. */
export function writeLengthPrefix (length: number): Buffer {
  const bytes: number[] = []
  let rest = length
  do {
    let byte = rest & 0x7f
    rest = Math.floor(rest / 128)
    if (rest > 0) byte |= 0x80
    bytes.push(byte)
  } while (rest > 0)
  return Buffer.from(bytes)
}

/** Prefixes `payload` with its length in one buffer. */
export function frameBinary (payload: Uint8Array): Buffer {
  const prefix = writeLengthPrefix(payload.length)
  const out = Buffer.allocUnsafe(prefix.length + payload.length)
  prefix.copy(out, 0)
  out.set(payload, prefix.length)
  return out
}

/**
 * Splits a byte stream into length-prefixed messages. A message may span
 * chunks; the size limit is checked on the prefix, before the body is buffered.
 */
export class BinaryMessageSplitter {
  private pending: Buffer = EMPTY
  private readonly maxMessageSize: number

  constructor (maxMessageSize: number | null) {
    this.maxMessageSize = maxMessageSize ?? MAX_LENGTH
  }

  /** Appends each whole message body of `chunk` to `out` (views into the data). */
  split (chunk: Buffer, out: Buffer[]): void {
    let data = chunk
    if (this.pending.length > 0) {
      data = Buffer.concat([this.pending, chunk])
      this.pending = EMPTY
    }
    let offset = 0
    while (offset < data.length) {
      let length = 0
      let shift = 0
      let cursor = offset
      let complete = false
      while (cursor < data.length) {
        const byte = data[cursor++]!
        if (shift === 28 && byte > 7) throw new ProtocolError('Messages bigger than 2GB are not supported.')
        length += (byte & 0x7f) * 2 ** shift
        if ((byte & 0x80) === 0) {
          complete = true
          break
        }
        shift += 7
        if (shift > 28) throw new ProtocolError('Cannot read message size.')
      }
      if (!complete) break
      if (length > this.maxMessageSize) throw messageTooLarge(this.maxMessageSize)
      if (data.length - cursor < length) break
      out.push(data.subarray(cursor, cursor + length))
      offset = cursor + length
    }
    if (offset < data.length) this.pending = Buffer.from(data.subarray(offset))
  }

  get hasPartialMessage (): boolean {
    return this.pending.length > 0
  }
}
