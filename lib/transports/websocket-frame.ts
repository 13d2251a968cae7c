function writeHeader (frame: Buffer, length: number, binary: boolean): void {
  frame[0] = 0x80 /* FIN */ | (binary ? 0x02 : 0x01)
  if (length < 126) {
    frame[1] = length
  } else if (length < 65536) {
    frame[1] = 126
    frame.writeUInt16BE(length, 2)
  } else {
    frame[1] = 127
    frame.writeUInt32BE(Math.floor(length / 2 ** 32), 2)
    frame.writeUInt32BE(length >>> 0, 6)
  }
}

function headerLengthOf (length: number): number {
  return length < 126 ? 2 : length < 65536 ? 4 : 10
}

/** A text frame straight from a string: one allocation, the UTF-8 encoded in place. */
export function encodeTextFrame (text: string): Buffer {
  const length = Buffer.byteLength(text, 'utf8')
  const headerLength = headerLengthOf(length)
  const frame = Buffer.allocUnsafe(headerLength + length)
  writeHeader(frame, length, false)
  frame.write(text, headerLength, 'utf8')
  return frame
}

/**
 * Builds a whole, unmasked WebSocket frame (RFC 6455 §5.2) in one buffer. A
 * broadcast builds its frame once and every receiving socket gets the same
 * bytes in a single write, as the raw-`ws` floor of the benchmarks does.
 */
export function encodeFrame (payload: Buffer, binary: boolean): Buffer {
  const length = payload.length
  const headerLength = headerLengthOf(length)
  const frame = Buffer.allocUnsafe(headerLength + length)
  writeHeader(frame, length, binary)
  // set, not copy: the typed-array builtin, without Buffer#copy's argument handling.
  frame.set(payload, headerLength)
  return frame
}

/** Copies records `[start, end)` into `target` from `offset` (strings as UTF-8). */
function copyRecords (target: Buffer, offset: number, records: ReadonlyArray<Buffer | string>, start: number, end: number): void {
  for (let i = start; i < end; i++) {
    const record = records[i]!
    offset += typeof record === 'string' ? target.write(record, offset, 'utf8') : record.copy(target, offset)
  }
}

/**
 * One frame holding several whole records (`length` bytes together). SignalR
 * lets a WebSocket message carry any number of records: JSON records each end
 * with 0x1e and MessagePack messages each start with their length, so the
 * clients split the frame as they would a stream.
 */
export function encodeRecordsFrame (records: ReadonlyArray<Buffer | string>, start: number, end: number, length: number, binary: boolean): Buffer {
  const headerLength = headerLengthOf(length)
  const frame = Buffer.allocUnsafe(headerLength + length)
  writeHeader(frame, length, binary)
  copyRecords(frame, headerLength, records, start, end)
  return frame
}

/** The same records joined without a frame header, for ws's own `send`. */
export function joinRecords (records: ReadonlyArray<Buffer | string>, start: number, end: number, length: number): Buffer {
  const payload = Buffer.allocUnsafe(length)
  copyRecords(payload, 0, records, start, end)
  return payload
}
