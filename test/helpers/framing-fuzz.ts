import fc from 'fast-check'
import type { Test } from 'tap'

/**
 * Settings shared by the framing and handshake fuzz tests. CI runs a fixed
 * seed, so a failure is reproducible from the log; by hand, set FUZZ_SEED to
 * explore other inputs and FUZZ_RUNS for a longer run (e.g. FUZZ_RUNS=20000).
 */
export const FUZZ_DEFAULT_SEED = 0x51a7
export const FUZZ_DEFAULT_RUNS = 300

function envInteger (name: string, fallback: number): number {
  const raw = process.env[name]
  if (raw === undefined || raw === '') return fallback
  const value = Number(raw)
  if (!Number.isSafeInteger(value)) throw new Error(`${name} must be an integer, got ${JSON.stringify(raw)}`)
  return value
}

export function fuzzParameters (): { seed: number, numRuns: number } {
  return { seed: envInteger('FUZZ_SEED', FUZZ_DEFAULT_SEED), numRuns: envInteger('FUZZ_RUNS', FUZZ_DEFAULT_RUNS) }
}

/** Checks `property` with the shared settings; a failure reports fast-check's counterexample and seed. */
export function checkProperty<Ts> (t: Test, name: string, property: fc.IProperty<Ts>): void {
  const result = fc.check(property, fuzzParameters())
  t.notOk(result.failed, result.failed ? `${name}\n${fc.defaultReportMessage(result)}` : name)
}

/** How a stream is cut: chunk sizes used in turn, one-byte chunks favoured (the worst case for framing). */
export const chunkSizes = fc.array(fc.oneof(fc.constant(1), fc.integer({ min: 1, max: 48 })), { maxLength: 24 })

/** Cuts `bytes` into fresh buffers of the given sizes in turn (all of it at once when `sizes` is empty). */
export function chunksOf (bytes: Uint8Array, sizes: readonly number[]): Buffer[] {
  if (sizes.length === 0) return bytes.length === 0 ? [] : [Buffer.from(bytes)]
  const out: Buffer[] = []
  for (let offset = 0, i = 0; offset < bytes.length; i++) {
    const size = sizes[i % sizes.length]!
    out.push(Buffer.from(bytes.subarray(offset, offset + size)))
    offset += size
  }
  return out
}

/** Bytes rich in `special` (a separator, a continuation bit), so random streams hit the interesting paths. */
export function bytesWith (special: number, maxLength: number): fc.Arbitrary<Uint8Array> {
  return fc.array(fc.oneof(fc.constant(special), fc.integer({ min: 0, max: 255 })), { maxLength })
    .map((values) => Uint8Array.from(values))
}

/**
 * Throws when an unfinished record holds more than `cap` bytes (the size
 * limit, plus the prefix for length-prefixed framing), or, without a limit,
 * when its buffer is more than twice what it holds.
 */
export function assertBounded (memory: { buffered: number, retained: number }, cap: number | null): void {
  const { buffered, retained } = memory
  if (cap !== null && (buffered > cap || retained > cap)) throw new Error(`holds ${buffered} bytes in ${retained} with a cap of ${cap}`)
  if (cap === null && retained > Math.max(256, 2 * buffered)) throw new Error(`retains ${retained} bytes for ${buffered}`)
}
