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

/** True when `value` nests arrays/objects more than `limit` levels deep. Stops looking at `limit + 1`. */
export function exceedsDepth (value: unknown, limit: number): boolean {
  return !fitsDepth(value, limit)
}

function fitsDepth (value: unknown, budget: number): boolean {
  if (value === null || typeof value !== 'object') return true
  if (ArrayBuffer.isView(value) || value instanceof Date) return true
  if (budget === 0) return false
  if (Array.isArray(value)) {
    for (let i = 0; i < value.length; i++) {
      if (!fitsDepth(value[i], budget - 1)) return false
    }
    return true
  }
  for (const key in value) {
    if (!fitsDepth((value as Record<string, unknown>)[key], budget - 1)) return false
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
  return inspect(value, MAX_VALUE_DEPTH)
}

function inspect (value: unknown, budget: number): number {
  if (typeof value === 'bigint') {
    if (value > BigInt(Number.MAX_SAFE_INTEGER) || value < BigInt(Number.MIN_SAFE_INTEGER)) {
      throw new SerializationError(`The BigInt ${value} is outside the range a number can represent exactly (±(2^53 − 1)).`)
    }
    return HAS_BIGINT
  }
  if (value === null || typeof value !== 'object') return 0
  if (value instanceof Uint8Array) return HAS_BYTES
  if (ArrayBuffer.isView(value) || value instanceof Date) return 0
  if (budget === 0) {
    throw new SerializationError(`The value nests deeper than ${MAX_VALUE_DEPTH} levels (or is cyclic).`)
  }
  let flags = 0
  if (Array.isArray(value)) {
    for (let i = 0; i < value.length; i++) flags |= inspect(value[i], budget - 1)
    return flags
  }
  for (const key in value) flags |= inspect((value as Record<string, unknown>)[key], budget - 1)
  return flags
}

/** Inspects every element of an argument list. */
export function inspectOutgoingList (values: readonly unknown[]): number {
  let flags = 0
  for (let i = 0; i < values.length; i++) flags |= inspect(values[i], MAX_VALUE_DEPTH)
  return flags
}

/** The reason text used when an incoming value is refused for its depth. */
export function tooDeepText (limit: number): string {
  return `The value nests deeper than the maximum depth of ${limit} (maximumMessageDepth).`
}
