/**
 * Property-based fuzzing of the handshake reader and parser (fast-check).
 * CI: a fixed seed (FUZZ_SEED, default in test/helpers/framing-fuzz.ts) and
 * FUZZ_RUNS runs per property (default 300). By hand, for a longer run:
 *   FUZZ_RUNS=20000 FUZZ_SEED=$RANDOM npx tap test/protocol/handshake.fuzz.test.ts
 */
import { isUtf8 } from 'node:buffer'
import fc from 'fast-check'
import t from 'tap'
import { HandshakeReader, negotiateHandshake, type HandshakeScan } from '../../lib/protocol/handshake.js'
import { resolveProtocols } from '../../lib/protocol/index.js'
import { ProtocolError } from '../../lib/protocol/protocol-error.js'
import { RECORD_SEPARATOR, RECORD_SEPARATOR_CHAR } from '../../lib/protocol/text-framing.js'
import { assertBounded, bytesWith, checkProperty, chunkSizes, chunksOf } from '../helpers/framing-fuzz.js'

interface Outcome {
  scan: HandshakeScan
  /** What came after the handshake: its `rest` and every later chunk. */
  after: Buffer
  error: unknown
}

/** Feeds chunks until the handshake is whole, checking the buffered bytes stay within the limit. */
function feed (chunks: Buffer[], limit: number | null): Outcome {
  const reader = new HandshakeReader(limit)
  let scan: HandshakeScan = { done: false }
  let i = 0
  try {
    for (; i < chunks.length && !scan.done; i++) {
      scan = reader.read(chunks[i]!)
      assertBounded(reader.memory, limit)
    }
  } catch (error) {
    return { scan, after: Buffer.alloc(0), error }
  }
  const after = Buffer.concat([scan.done ? scan.rest : Buffer.alloc(0), ...chunks.slice(i)])
  return { scan, after, error: undefined }
}

const handshakeJson = fc.record({
  protocol: fc.oneof(fc.constantFrom('json', 'messagepack', 'JSON'), fc.string({ unit: 'grapheme', maxLength: 12 })),
  version: fc.oneof(fc.integer({ min: 0, max: 3 }), fc.double())
}, { requiredKeys: [] }).chain((base) => fc.dictionary(fc.string({ maxLength: 6 }), fc.jsonValue({ maxDepth: 2 }), { maxKeys: 3 })
  .map((extra) => JSON.stringify({ ...extra, ...base })))

t.test('a valid handshake under any chunking: the same request and the same following bytes', async (t) => {
  checkProperty(t, 'handshake survives any chunking', fc.property(
    handshakeJson, fc.uint8Array({ maxLength: 60 }), chunkSizes,
    (json, rest, sizes) => {
      const stream = Buffer.concat([Buffer.from(json + RECORD_SEPARATOR_CHAR, 'utf8'), rest])
      const outcome = feed(chunksOf(stream, sizes), null)
      return outcome.error === undefined && outcome.scan.done && outcome.scan.request === json && outcome.after.equals(rest)
    }))
})

t.test('arbitrary bytes under a limit: the record of the whole stream, or ProtocolError (too large, not UTF-8)', async (t) => {
  checkProperty(t, 'chunked reading matches reading the stream at once', fc.property(
    bytesWith(RECORD_SEPARATOR, 200), chunkSizes, fc.option(fc.integer({ min: 1, max: 64 }), { nil: null }),
    (bytes, sizes, limit) => {
      const data = Buffer.from(bytes)
      const outcome = feed(chunksOf(data, sizes), limit)
      const end = data.indexOf(RECORD_SEPARATOR)
      const max = limit ?? Number.POSITIVE_INFINITY
      const fails = end === -1 ? data.length > max : end + 1 > max || !isUtf8(data.subarray(0, end))
      if (fails) return outcome.error instanceof ProtocolError
      if (outcome.error !== undefined) return false
      if (end === -1) return !outcome.scan.done
      return outcome.scan.done && outcome.scan.request === data.toString('utf8', 0, end) &&
        outcome.after.equals(data.subarray(end + 1))
    }))
})

t.test('negotiateHandshake answers any request text, never throws', async (t) => {
  const protocols = resolveProtocols(['json', 'messagepack'])
  const text = fc.oneof(handshakeJson, fc.json(), fc.string({ unit: 'binary', maxLength: 60 }))
  checkProperty(t, 'negotiateHandshake is total', fc.property(
    text, fc.constantFrom<Array<'Text' | 'Binary'>>(['Text'], ['Text', 'Binary']),
    (request, formats) => {
      const result = negotiateHandshake(request, protocols, formats)
      return result.ok ? formats.includes(result.protocol.transferFormat) : typeof result.error === 'string'
    }))
})
