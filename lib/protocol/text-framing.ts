import { messageTooLarge } from './protocol-error.js'

/** Ends every record of the JSON protocol and of the handshake. */
export const RECORD_SEPARATOR = 0x1e
export const RECORD_SEPARATOR_CHAR = '\u001e'


/**
 * Splits a byte stream into records ended by 0x1e. A record may span chunks and a
 * chunk may hold several records, so the unfinished tail is carried over. The size
 * limit is checked while scanning, so an endless record is refused as soon as it
 * passes the limit instead of being buffered whole.
 */
export class TextRecordSplitter {
  /**
   * Chunks of an unfinished record. They are joined only once its separator
   * arrives, so a record trickling in byte by byte costs linear, not
   * quadratic, work.
   */
  private pending: Buffer[] = []
  private pendingLength = 0
  private readonly maxRecordSize: number

  constructor (maxRecordSize: number | null) {
    this.maxRecordSize = maxRecordSize ?? Number.POSITIVE_INFINITY
  }

  /** Appends each whole record of `chunk` (without its separator) to `out`. */
  split (chunk: Buffer, out: string[]): void {
    let end = chunk.indexOf(RECORD_SEPARATOR)
    if (end === -1) {
      this.keep(chunk)
      return
    }
    let data = chunk
    let start = 0
    if (this.pendingLength > 0) {
      // The first separator ends the pending record: join it once, then go on in `chunk`.
      const head = this.pendingLength
      data = Buffer.concat([...this.pending, chunk], head + chunk.length)
      this.pending = []
      this.pendingLength = 0
      end += head
    }
    while (end !== -1) {
      // As in ASP.NET, the separator counts: record + RS must fit in the limit.
      if (end - start >= this.maxRecordSize) throw messageTooLarge(this.maxRecordSize)
      out.push(data.toString('utf8', start, end))
      start = end + 1
      end = data.indexOf(RECORD_SEPARATOR, start)
    }
    if (start < data.length) this.keep(data.subarray(start))
  }

  private keep (part: Buffer): void {
    if (this.pendingLength + part.length > this.maxRecordSize) {
      // Nothing of a refused record stays buffered.
      this.pending = []
      this.pendingLength = 0
      throw messageTooLarge(this.maxRecordSize)
    }
    // Copy so the caller's (possibly pooled) chunk is not retained.
    this.pending.push(Buffer.from(part))
    this.pendingLength += part.length
  }

  /** True when an unfinished record is buffered (a protocol error at end of stream). */
  get hasPartialRecord (): boolean {
    return this.pendingLength > 0
  }
}
