import { SerializationError } from '../errors.js'

/**
 * Limits on the values that travel inside hub messages (arguments, results,
 * stream items), shared by both codecs so that a value either fails for every
 * protocol or for none: a broadcast is never half delivered.
 *
 * Depth counts nested arrays and objects: `1` is 0 deep, `[1]` 1, `{a:[1]}` 2.
 */

/**
 * The hard ceiling for any value, in and out. The serializers and msgpackr's
 * reader recurse once per level and overflow the stack at a few thousand; this
 * keeps them far from it. `maximumMessageDepth` may not be set above it.
 */
export const MAX_VALUE_DEPTH = 512

/** Flags returned by `inspectOutgoing`, so a codec only pays for a replacer when it needs one. */
export const HAS_BYTES = 1
export const HAS_BIGINT = 2

/*
 * Both walks run on every message, so they are shaped for the common case:
 * primitives and flat containers of primitives. A child is only visited by a
 * call when it is an object (or, outgoing, a BigInt), so a flat array or
 * object costs one loop and no call per element; plain arrays are recognised
 * first, before the typed-array and Date checks.
 */

/** True when `value` nests arrays/objects more than `limit` levels deep. Stops looking at `limit + 1`. */
export function exceedsDepth (value: unknown, limit: number): boolean {
  return value !== null && typeof value === 'object' && !fitsDepth(value, limit)
}

function fitsDepth (value: object, budget: number): boolean {
  if (Array.isArray(value)) {
    if (budget === 0) return false
    for (let i = 0; i < value.length; i++) {
      const item: unknown = value[i]
      if (item !== null && typeof item === 'object' && !fitsDepth(item, budget - 1)) return false
    }
    return true
  }
  if (ArrayBuffer.isView(value) || value instanceof Date) return true
  if (budget === 0) return false
  for (const key in value) {
    const item = (value as Record<string, unknown>)[key]
    if (item !== null && typeof item === 'object' && !fitsDepth(item, budget - 1)) return false
  }
  return true
}

/**
 * Checks a value the server is about to send and says what the JSON writer
 * must convert. Throws `SerializationError` for what no protocol can carry:
 * nesting deeper than MAX_VALUE_DEPTH (a cyclic value is infinitely deep) and
 * a BigInt beyond ±(2^53 − 1), which no JavaScript client could read back
 * exactly. BigInts within that range go out as plain numbers in both protocols.
 */
export function inspectOutgoing (value: unknown): number {
  return needsVisit(value) ? inspect(value, MAX_VALUE_DEPTH) : 0
}

/** Inspects every element of an argument list. */
export function inspectOutgoingList (values: readonly unknown[]): number {
  let flags = 0
  for (let i = 0; i < values.length; i++) {
    const value = values[i]
    if (needsVisit(value)) flags |= inspect(value, MAX_VALUE_DEPTH)
  }
  return flags
}

/** Objects and BigInts; every other primitive is fine as it is. */
function needsVisit (value: unknown): boolean {
  return typeof value === 'object' ? value !== null : typeof value === 'bigint'
}

const MAX_SAFE = BigInt(Number.MAX_SAFE_INTEGER)
const MIN_SAFE = BigInt(Number.MIN_SAFE_INTEGER)

/** `value` is a non-null object or a BigInt. */
function inspect (value: unknown, budget: number): number {
  if (typeof value === 'bigint') {
    if (value > MAX_SAFE || value < MIN_SAFE) {
      throw new SerializationError(`The BigInt ${value} is outside the range a number can represent exactly (±(2^53 − 1)).`)
    }
    return HAS_BIGINT
  }
  let flags = 0
  if (Array.isArray(value)) {
    if (budget === 0) tooDeepOutgoing()
    for (let i = 0; i < value.length; i++) {
      const item: unknown = value[i]
      if (needsVisit(item)) flags |= inspect(item, budget - 1)
    }
    return flags
  }
  if (ArrayBuffer.isView(value)) return value instanceof Uint8Array ? HAS_BYTES : 0
  if (value instanceof Date) return 0
  if (budget === 0) tooDeepOutgoing()
  for (const key in value as object) {
    const item = (value as Record<string, unknown>)[key]
    if (needsVisit(item)) flags |= inspect(item, budget - 1)
  }
  return flags
}

function tooDeepOutgoing (): never {
  throw new SerializationError(`The value nests deeper than ${MAX_VALUE_DEPTH} levels (or is cyclic).`)
}

/** The reason text used when an incoming value is refused for its depth. */
export function tooDeepText (limit: number): string {
  return `The value nests deeper than the maximum depth of ${limit} (maximumMessageDepth).`
}

/**
 * Invocation ids the writers copy byte for byte (as the clients make them:
 * decimal counters): printable ASCII without a quote or backslash, so they
 * need no escaping in JSON and are the same bytes in UTF-8 and Latin-1.
 */
export function isPlainId (id: string): boolean {
  for (let i = 0; i < id.length; i++) {
    const c = id.charCodeAt(i)
    if (c < 0x20 || c > 0x7e || c === 0x22 /* " */ || c === 0x5c /* \ */) return false
  }
  return true
}

/** Buffer's own string writers, without `write`'s argument handling (worth it on per-message paths). */
interface DirectWrites {
  latin1Write (text: string, offset: number): number
  utf8Write (text: string, offset: number): number
}

/** Writes `text` (plain ASCII or Latin-1) at `offset`; returns the bytes written. */
export function putLatin1 (out: Buffer, text: string, offset: number): number {
  return (out as Buffer & DirectWrites).latin1Write(text, offset)
}

/** Writes `text` as UTF-8 at `offset` (`out` has room for all of it); returns the bytes written. */
export function putUtf8 (out: Buffer, text: string, offset: number): number {
  return (out as Buffer & DirectWrites).utf8Write(text, offset)
}
