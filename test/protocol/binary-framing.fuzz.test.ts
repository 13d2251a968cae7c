/**
 * Property-based fuzzing of the VarInt length-prefix framing (fast-check).
 * CI: a fixed seed (FUZZ_SEED, default in test/helpers/framing-fuzz.ts) and
 * FUZZ_RUNS runs per property (default 300). By hand, for a longer run:
 *   FUZZ_RUNS=20000 FUZZ_SEED=$RANDOM npx tap test/protocol/binary-framing.fuzz.test.ts
 */
import fc from 'fast-check'
import t from 'tap'
import { BinaryMessageSplitter, frameBinary } from '../../lib/protocol/binary-framing.js'
import { ProtocolError } from '../../lib/protocol/protocol-error.js'
import { assertBounded, bytesWith, checkProperty, chunkSizes, chunksOf } from '../helpers/framing-fuzz.js'

/** Longest prefix: 5 bytes. */
const PREFIX_BYTES = 5

interface Outcome {
  bodies: Buffer[]
  error: unknown
  partial: boolean
}

function feed (splitter: BinaryMessageSplitter, chunks: Buffer[], limit: number | null): Outcome {
  const bodies: Buffer[] = []
  try {
    for (const chunk of chunks) {
      splitter.split(chunk, bodies)
      assertBounded(splitter.memory, limit === null ? null : limit + PREFIX_BYTES)
    }
  } catch (error) {
    return { bodies, error, partial: splitter.hasPartialMessage }
  }
  return { bodies, error: undefined, partial: splitter.hasPartialMessage }
}

/** Reads the whole stream at once, as the protocol defines it: 7 bits a byte, low group first, below 2^31. */
function expected (bytes: Uint8Array, limit: number | null): { bodies: Buffer[], fails: boolean, partial: boolean } {
  const bodies: Buffer[] = []
  let offset = 0
  while (offset < bytes.length) {
    let length = 0
    let cursor = offset
    let complete = false
    for (let group = 0; group < PREFIX_BYTES && cursor < bytes.length; group++) {
      const byte = bytes[cursor++]!
      length += (byte & 0x7f) * 128 ** group
      if ((byte & 0x80) === 0) {
        complete = true
        break
      }
    }
    if (!complete) {
      // Five bytes that still continue, or a fifth byte above 7: 2 GiB or more.
      const fails = cursor - offset === PREFIX_BYTES
      return { bodies, fails, partial: !fails }
    }
    if (length > 0x7fffffff || (limit !== null && length > limit)) return { bodies, fails: true, partial: false }
    if (bytes.length - cursor < length) return { bodies, fails: false, partial: true }
    bodies.push(Buffer.from(bytes.subarray(cursor, cursor + length)))
    offset = cursor + length
  }
  return { bodies, fails: false, partial: false }
}

function sameBodies (a: Buffer[], b: Buffer[]): boolean {
  return a.length === b.length && a.every((body, i) => body.equals(b[i]!))
}

t.test('valid streams: any chunking gives the same messages, still intact after later chunks', async (t) => {
  checkProperty(t, 'messages survive any chunking', fc.property(
    fc.array(fc.uint8Array({ maxLength: 300 }), { maxLength: 8 }), chunkSizes,
    (payloads, sizes) => {
      const stream = Buffer.concat(payloads.map((payload) => frameBinary(payload)))
      const outcome = feed(new BinaryMessageSplitter(null), chunksOf(stream, sizes), null)
      // Compared only after every chunk went in: a body handed out early must not be overwritten.
      return outcome.error === undefined && !outcome.partial &&
        sameBodies(outcome.bodies, payloads.map((payload) => Buffer.from(payload)))
    }))
})

t.test('arbitrary bytes under a limit: the messages of the whole stream, or a ProtocolError at the same message', async (t) => {
  checkProperty(t, 'chunked framing matches reading the stream at once', fc.property(
    bytesWith(0x80, 300), chunkSizes, fc.option(fc.integer({ min: 0, max: 64 }), { nil: null }),
    (bytes, sizes, limit) => {
      const outcome = feed(new BinaryMessageSplitter(limit), chunksOf(bytes, sizes), limit)
      const wanted = expected(bytes, limit)
      if (!sameBodies(outcome.bodies, wanted.bodies)) return false
      if (!wanted.fails) return outcome.error === undefined && outcome.partial === wanted.partial
      return outcome.error instanceof ProtocolError && !outcome.partial
    }))
})
