import type { InvocationMessage } from './messages.js'

/**
 * The MessagePack reader's short cut for the message nearly every body is: an
 * Invocation as the official clients write it, `[1, {}, id | nil, target, [args]]`
 * (a five-element array, empty headers). Runs after the scan
 * (messagepack-scan.ts) has accepted the body, so its structure is known to be
 * sound: the fifth element is the rest of the body. Only the arguments are
 * unpacked, by the caller's msgpackr reader; the id and target are read here,
 * when they are short ASCII strings (so their decoding cannot differ from
 * msgpackr's). Anything else returns null and the general reader runs.
 */

const FIXARRAY_5 = 0x95
const FIXMAP_0 = 0x80
const NIL = 0xc0
const STR8 = 0xd9

/** The last target read, reused when the next body names it again (reading is synchronous). */
let lastTarget = ''

/** Where the string read by `stringAt` ends (a variable, not an object per call). */
let stringEnd = 0

/**
 * The body of the fixstr or str8 at `at`, as [start, end) in `stringEnd` and
 * the start returned; -1 when it is not one, runs past `end`, or holds a
 * non-ASCII byte.
 */
function stringAt (body: Uint8Array, at: number, end: number): number {
  const token = body[at]!
  let start: number
  let length: number
  if (token >= 0xa0 && token <= 0xbf) {
    start = at + 1
    length = token & 0x1f
  } else if (token === STR8 && at + 1 < end) {
    start = at + 2
    length = body[at + 1]!
  } else {
    return -1
  }
  if (start + length > end) return -1
  for (let i = start; i < start + length; i++) {
    if (body[i]! >= 0x80) return -1
  }
  stringEnd = start + length
  return start
}

function sameAscii (body: Uint8Array, start: number, end: number, text: string): boolean {
  if (text.length !== end - start) return false
  for (let i = start; i < end; i++) {
    if (body[i] !== text.charCodeAt(i - start)) return false
  }
  return true
}

/**
 * The Invocation in `body` when it has the clients' shape; null otherwise.
 * `unpackFrom(body, start)` unpacks the value from `start` to the end.
 */
export function readCommonInvocation (body: Buffer, unpackFrom: (body: Buffer, start: number) => unknown): InvocationMessage | null {
  const end = body.length
  if (end < 6 || body[0] !== FIXARRAY_5 || body[1] !== 1 || body[2] !== FIXMAP_0) return null
  let at = 3
  let invocationId: string | undefined
  if (body[at] === NIL) {
    at++
  } else {
    const start = stringAt(body, at, end)
    if (start === -1) return null
    // ASP.NET treats an empty id like no id: a non-blocking invocation.
    invocationId = start === stringEnd ? undefined : body.toString('latin1', start, stringEnd)
    at = stringEnd
  }
  if (at >= end) return null
  const targetStart = stringAt(body, at, end)
  if (targetStart === -1) return null
  let target = lastTarget
  if (!sameAscii(body, targetStart, stringEnd, target)) target = lastTarget = body.toString('latin1', targetStart, stringEnd)
  at = stringEnd
  // The arguments: an array token is all the scan leaves to check here.
  if (at >= end) return null
  const token = body[at]!
  if (!((token >= 0x90 && token <= 0x9f) || token === 0xdc || token === 0xdd)) return null
  const args = unpackFrom(body, at)
  if (!Array.isArray(args)) return null
  // The general reader's shape, so both paths hand the dispatcher objects of one hidden class.
  return { type: 1, headers: undefined, invocationId, target, arguments: args, streamIds: undefined }
}
