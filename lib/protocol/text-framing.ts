import { isUtf8 } from 'node:buffer'
import type { RecordFraming } from './hub-protocol.js'
import { PendingBytes, type PendingMemory } from './pending-bytes.js'
import { messageTooLarge, ProtocolError } from './protocol-error.js'

/** Ends every record of the JSON protocol and of the handshake. */
export const RECORD_SEPARATOR = 0x1e
export const RECORD_SEPARATOR_CHAR = '\u001e'

/**
 * Text records must be UTF-8, as ASP.NET's JSON reader requires. Checked here,
 * once per record and for every transport, so a bad record closes the
 * connection with SignalR's Close message (the plugin turns ws's own check on
 * text frames off: it would drop the socket and log an error instead).
 */
function decodeRecord (bytes: Buffer, start: number, end: number): string {
  const text = bytes.toString('utf8', start, end)
  // Bytes that are not UTF-8 decode to U+FFFD, so valid records (nearly all)
  // cost one string search; the exact check runs only when one is present.
  if (text.includes('\uFFFD') && !isUtf8(bytes.subarray(start, end))) {
    throw new ProtocolError('The record is not valid UTF-8.')
  }
  return text
}

/**
 * Splits a byte stream into records ended by 0x1e. A record may span chunks and a
 * chunk may hold several records, so the unfinished tail is carried over. The size
 * limit is checked while scanning, so an endless record is refused as soon as it
 * passes the limit instead of being buffered whole.
 */
export class TextRecordSplitter {
  /**
   * The unfinished record, in one growable buffer: a record trickling in byte
   * by byte costs linear work and at most twice its size in memory. Records
   * that arrive whole are decoded straight from the chunk, without a copy.
   * Made for the first record that does not arrive whole: an idle connection
   * whose records always did holds none.
   */
  private pending: PendingBytes | null = null
  private readonly maxRecordSize: number

  constructor (maxRecordSize: number | null) {
    this.maxRecordSize = maxRecordSize ?? Number.POSITIVE_INFINITY
  }

  /** Appends each whole record of `chunk` (without its separator) to `out`. */
  split (chunk: Buffer, out: string[]): void {
    let start = 0
    let end = chunk.indexOf(RECORD_SEPARATOR)
    const pending = this.pending
    if (pending !== null && pending.length > 0) {
      if (end === -1) {
        this.keep(chunk)
        return
      }
      // The first separator ends the pending record.
      if (pending.length + end >= this.maxRecordSize) this.refuse()
      pending.append(chunk.subarray(0, end))
      const record = pending.bytes()
      pending.reset()
      out.push(decodeRecord(record, 0, record.length))
      start = end + 1
      end = chunk.indexOf(RECORD_SEPARATOR, start)
    }
    while (end !== -1) {
      // As in ASP.NET, the separator counts: record + RS must fit in the limit.
      if (end - start >= this.maxRecordSize) this.refuse()
      out.push(decodeRecord(chunk, start, end))
      start = end + 1
      end = chunk.indexOf(RECORD_SEPARATOR, start)
    }
    if (start < chunk.length) this.keep(chunk.subarray(start))
  }

  private keep (part: Buffer): void {
    // An unterminated record may hold exactly the limit (its separator would then be refused).
    const pending = this.pending ??= new PendingBytes(this.maxRecordSize)
    if (pending.length + part.length > this.maxRecordSize) this.refuse()
    pending.append(part)
  }

  /** Nothing of a refused record stays buffered. */
  private refuse (): never {
    this.pending?.reset()
    throw messageTooLarge(this.maxRecordSize)
  }

  /** True when an unfinished record is buffered (a protocol error at end of stream). */
  get hasPartialRecord (): boolean {
    return this.pending !== null && this.pending.length > 0
  }

  /** What the unfinished record costs (tests and diagnostics). */
  get memory (): PendingMemory {
    return (this.pending ??= new PendingBytes(this.maxRecordSize)).memory
  }
}

/** Records ended by 0x1e, handed out as UTF-8 strings (the JSON protocol's framing). */
export const recordSeparatorFraming: RecordFraming<string> = Object.freeze({
  createSplitter (maxRecordSize: number | null) {
    return new TextRecordSplitter(maxRecordSize)
  }
})
