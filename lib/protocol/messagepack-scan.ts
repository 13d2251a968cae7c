import { ProtocolError } from './protocol-error.js'

/**
 * A walk over one MessagePack body before msgpackr reads it. msgpackr knows
 * far more than the SignalR MessagePack protocol (records, structured clone,
 * Set, RegExp, Error, typed arrays, bundled strings behind 0xc1) and recurses
 * once per nesting level; this scan, iterative and allocation-free, lets only
 * the standard types and the timestamp extension (-1) through, bounds the
 * nesting, and refuses any length or count larger than the bytes that are
 * left, so a 5-byte header cannot make the reader allocate a huge array.
 *
 * It runs on every incoming message, so it is written for speed: one pass,
 * the open containers on a preallocated typed-array stack (no push/pop, no
 * cleanup), the common one-byte tokens tested first.
 */

/** Set in the result when a map key could poison a prototype (`__proto__`, `constructor`). */
export const SUSPICIOUS_KEY = 1

const PROTO = Buffer.from('__proto__')
const CONSTRUCTOR = Buffer.from('constructor')
const TIMESTAMP = 0xff // ext type -1 as a byte

/**
 * The open containers: items left in each, and whether it is a map (whose
 * items alternate key, value). Shared: the scan is synchronous. Grown when a
 * caller asks for a deeper limit than they hold.
 */
let lefts = new Int32Array(1024)
let maps = new Uint8Array(1024)

function invalid (reason: string): never {
  throw new ProtocolError(`Error reading MessagePack data: ${reason}.`)
}

/** Checks `body` holds exactly one value within `maxDepth` levels; returns SUSPICIOUS_KEY flags. */
export function scanMessagePack (body: Uint8Array, maxDepth: number): number {
  if (maxDepth > lefts.length) {
    lefts = new Int32Array(maxDepth)
    maps = new Uint8Array(maxDepth)
  }
  const end = body.length
  let pos = 0
  let flags = 0
  let depth = 0
  let left = 1 // items left in the innermost open container (the message itself at first)
  let inMap = false
  for (;;) {
    if (left === 0) {
      if (depth === 0) break
      depth--
      left = lefts[depth]!
      inMap = maps[depth] === 1
      continue
    }
    // In a map an even count left means a key comes next, an odd one its value.
    const isKey = inMap && (left & 1) === 0
    left--
    if (pos >= end) invalid('unexpected end of data')
    const token = body[pos++]!
    if (token < 0x80 || token >= 0xe0) continue // fixint
    let length = -1 // bytes of payload to skip
    let items = -1 // elements of a container
    let isMap = false
    let isString = false
    if (token >= 0xa0 && token <= 0xbf) {
      length = token & 0x1f
      isString = true
    } else if (token <= 0x9f) {
      items = token & 0x0f
      isMap = token <= 0x8f
    } else {
      switch (token) {
        case 0xc0: case 0xc2: case 0xc3: continue
        case 0xd9: length = readUint(body, pos, 1, end); pos += 1; isString = true; break
        case 0xda: length = readUint(body, pos, 2, end); pos += 2; isString = true; break
        case 0xdb: length = readUint(body, pos, 4, end); pos += 4; isString = true; break
        case 0xc4: length = readUint(body, pos, 1, end); pos += 1; break
        case 0xc5: length = readUint(body, pos, 2, end); pos += 2; break
        case 0xc6: length = readUint(body, pos, 4, end); pos += 4; break
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
        case 0xde: items = readUint(body, pos, 2, end); pos += 2; isMap = true; break
        case 0xdf: items = readUint(body, pos, 4, end); pos += 4; isMap = true; break
        default:
          // 0xc1 (never used), ext 16/32, fixext 1/2/16: nothing SignalR defines.
          invalid(`type 0x${token.toString(16)} is not allowed`)
      }
    }
    if (items >= 0) {
      if (isMap) items *= 2
      if (items === 0) continue
      // Every element takes at least one byte.
      if (items > end - pos) invalid('a container is longer than the data')
      if (depth >= maxDepth) invalid(`nested deeper than ${maxDepth} levels`)
      lefts[depth] = left
      maps[depth] = inMap ? 1 : 0
      depth++
      left = items
      inMap = isMap
      continue
    }
    if (length > end - pos) invalid('a value is longer than the data')
    if (isString && isKey && (length === 9 || length === 11)) flags |= suspicious(body, pos, length)
    pos += length
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

/** SUSPICIOUS_KEY when the string of `length` bytes at `pos` (already bounds-checked) is `__proto__` or `constructor`. */
function suspicious (body: Uint8Array, pos: number, length: number): number {
  return equalsAt(body, pos, length === 9 ? PROTO : CONSTRUCTOR) ? SUSPICIOUS_KEY : 0
}

function equalsAt (body: Uint8Array, pos: number, word: Buffer): boolean {
  if (pos + word.length > body.length) return false
  for (let i = 0; i < word.length; i++) {
    if (body[pos + i] !== word[i]) return false
  }
  return true
}
