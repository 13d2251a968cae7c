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
  payload.copy(frame, headerLength)
  return frame
}
