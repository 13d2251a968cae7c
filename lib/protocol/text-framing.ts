import { messageTooLarge } from './protocol-error.js'

/** Ends every record of the JSON protocol and of the handshake. */
export const RECORD_SEPARATOR = 0x1e
export const RECORD_SEPARATOR_CHAR = '\u001e'

const EMPTY = Buffer.alloc(0)

/**
 * Splits a byte stream into records ended by 0x1e. A record may span chunks and a
 * chunk may hold several records, so the unfinished tail is carried over. The size
 * limit is checked while scanning, so an endless record is refused as soon as it
 * passes the limit instead of being buffered whole.
 */
export class TextRecordSplitter {
  private pending: Buffer = EMPTY
  private readonly maxRecordSize: number

  constructor (maxRecordSize: number | null) {
    this.maxRecordSize = maxRecordSize ?? Number.POSITIVE_INFINITY
  }

  /** Appends each whole record of `chunk` (without its separator) to `out`. */
  split (chunk: Buffer, out: string[]): void {
    let data = chunk
    if (this.pending.length > 0) {
      data = Buffer.concat([this.pending, chunk])
      this.pending = EMPTY
    }
    let start = 0
    let end = data.indexOf(RECORD_SEPARATOR, start)
    while (end !== -1) {
      // As in ASP.NET, the separator counts: record + RS must fit in the limit.
      if (end - start >= this.maxRecordSize) throw messageTooLarge(this.maxRecordSize)
      out.push(data.toString('utf8', start, end))
      start = end + 1
      end = data.indexOf(RECORD_SEPARATOR, start)
    }
    if (start < data.length) {
      if (data.length - start > this.maxRecordSize) throw messageTooLarge(this.maxRecordSize)
      // Copy so the caller's (possibly pooled) chunk is not retained.
      this.pending = Buffer.from(data.subarray(start))
    }
  }

  /** True when an unfinished record is buffered (a protocol error at end of stream). */
  get hasPartialRecord (): boolean {
    return this.pending.length > 0
  }
}
