import { ProtocolError } from './protocol-error.js'

/**
 * A walk over one MessagePack body before msgpackr reads it. msgpackr knows
 * far more than the SignalR MessagePack protocol (records, structured clone,
 * Set, RegExp, Error, typed arrays, bundled strings behind 0xc1) and recurses
 * once per nesting level; this scan, iterative and allocation-free, lets only
 * the standard types and the timestamp extension (-1) through, bounds the
 * nesting, and refuses any length or count larger than the bytes that are
 * left, so a 5-byte header cannot make the reader allocate a huge array.
 */

/** Set in the result when a map key could poison a prototype (`__proto__`, `constructor`). */
export const SUSPICIOUS_KEY = 1

const PROTO = Buffer.from('__proto__')
const CONSTRUCTOR = Buffer.from('constructor')
const TIMESTAMP = 0xff // ext type -1 as a byte

/** Remaining-item counts of the open containers; reused (the scan is synchronous). */
const counts: number[] = []
/** Whether each open container is a map (items alternate key, value). */
const maps: boolean[] = []

function invalid (reason: string): never {
  throw new ProtocolError(`Error reading MessagePack data: ${reason}.`)
}

/** Checks `body` holds exactly one value within `maxDepth` levels; returns SUSPICIOUS_KEY flags. */
export function scanMessagePack (body: Uint8Array, maxDepth: number): number {
  const end = body.length
  let pos = 0
  let flags = 0
  let left = 1
  let inMap = false
  counts.length = 0
  maps.length = 0
  try {
    for (;;) {
      if (left === 0) {
        if (counts.length === 0) break
        left = counts.pop()!
        inMap = maps.pop()!
        continue
      }
      // In a map an odd count left means a value follows, an even one a key.
      const isKey = inMap && (left & 1) === 0
      left--
      if (pos >= end) invalid('unexpected end of data')
      const token = body[pos++]!
      let length = -1 // bytes of payload to skip
      let items = -1 // elements of a container
      let isMapToken = false
      if (token <= 0x7f || token >= 0xe0 || token === 0xc0 || token === 0xc2 || token === 0xc3) {
        length = 0
      } else if (token <= 0x8f) {
        items = token & 0x0f
        isMapToken = true
      } else if (token <= 0x9f) {
        items = token & 0x0f
      } else if (token <= 0xbf) {
        length = token & 0x1f
      } else {
        switch (token) {
          case 0xc4: case 0xd9: length = readUint(body, pos, 1, end); pos += 1; break
          case 0xc5: case 0xda: length = readUint(body, pos, 2, end); pos += 2; break
          case 0xc6: case 0xdb: length = readUint(body, pos, 4, end); pos += 4; break
          case 0xca: length = 4; break
          case 0xcb: length = 8; break
          case 0xcc: case 0xd0: length = 1; break
          case 0xcd: case 0xd1: length = 2; break
          case 0xce: case 0xd2: length = 4; break
          case 0xcf: case 0xd3: length = 8; break
          // Timestamps are the only extension: fixext 4, fixext 8, ext 8 of 12 bytes.
          case 0xd6: case 0xd7:
            if (body[pos] !== TIMESTAMP) invalid('extension types other than the timestamp are not allowed')
            length = (token === 0xd6 ? 4 : 8) + 1
            break
          case 0xc7:
            if (body[pos] !== 12 || body[pos + 1] !== TIMESTAMP) invalid('extension types other than the timestamp are not allowed')
            length = 12 + 2
            break
          case 0xdc: items = readUint(body, pos, 2, end); pos += 2; break
          case 0xdd: items = readUint(body, pos, 4, end); pos += 4; break
          case 0xde: items = readUint(body, pos, 2, end); pos += 2; isMapToken = true; break
          case 0xdf: items = readUint(body, pos, 4, end); pos += 4; isMapToken = true; break
          default:
            // 0xc1 (never used), ext 16/32, fixext 1/2/16: nothing SignalR defines.
            invalid(`type 0x${token.toString(16)} is not allowed`)
        }
      }
      if (items >= 0) {
        if (isMapToken) items *= 2
        // Every element takes at least one byte.
        if (items > end - pos) invalid('a container is longer than the data')
        if (items === 0) continue
        if (counts.length >= maxDepth) invalid(`nested deeper than ${maxDepth} levels`)
        counts.push(left)
        maps.push(inMap)
        left = items
        inMap = isMapToken
        continue
      }
      if (length > end - pos) invalid('a value is longer than the data')
      if (isKey && (length === 9 || length === 11) && ((token >= 0xa0 && token <= 0xbf) || (token >= 0xd9 && token <= 0xdb))) {
        if (equalsAt(body, pos, PROTO) || equalsAt(body, pos, CONSTRUCTOR)) flags |= SUSPICIOUS_KEY
      }
      pos += length
    }
  } finally {
    counts.length = 0
    maps.length = 0
  }
  if (pos !== end) invalid('data after the end of the message')
  return flags
}

function readUint (body: Uint8Array, pos: number, size: number, end: number): number {
  if (pos + size > end) invalid('unexpected end of data')
  let value = 0
  for (let i = 0; i < size; i++) value = value * 256 + body[pos + i]!
  return value
}

function equalsAt (body: Uint8Array, pos: number, word: Buffer): boolean {
  if (pos + word.length > body.length) return false
  for (let i = 0; i < word.length; i++) {
    if (body[pos + i] !== word[i]) return false
  }
  return true
}
