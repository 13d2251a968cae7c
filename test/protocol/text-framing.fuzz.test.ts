/**
 * Property-based fuzzing of the 0x1e record framing (fast-check).
 * CI: a fixed seed (FUZZ_SEED, default in test/helpers/framing-fuzz.ts) and
 * FUZZ_RUNS runs per property (default 300). By hand, for a longer run:
 *   FUZZ_RUNS=20000 FUZZ_SEED=$RANDOM npx tap test/protocol/text-framing.fuzz.test.ts
 */
import { isUtf8 } from 'node:buffer'
import fc from 'fast-check'
import t from 'tap'
import { ProtocolError } from '../../lib/protocol/protocol-error.js'
import { RECORD_SEPARATOR, RECORD_SEPARATOR_CHAR, TextRecordSplitter } from '../../lib/protocol/text-framing.js'
import { assertBounded, bytesWith, checkProperty, chunkSizes, chunksOf } from '../helpers/framing-fuzz.js'

interface Outcome {
  records: string[]
  /** The error thrown, if any (the property then checks its type). */
  error: unknown
  partial: boolean
}

/** Feeds `chunks` and checks after each one that the unfinished record stays within the limit. */
function feed (splitter: TextRecordSplitter, chunks: Buffer[], limit: number | null): Outcome {
  const records: string[] = []
  try {
    for (const chunk of chunks) {
      splitter.split(chunk, records)
      assertBounded(splitter.memory, limit)
    }
  } catch (error) {
    return { records, error, partial: splitter.hasPartialRecord }
  }
  return { records, error: undefined, partial: splitter.hasPartialRecord }
}

/** What framing the whole stream at once must give: records in order until the first one over the limit or not UTF-8. */
function expected (bytes: Uint8Array, limit: number | null): { records: string[], fails: boolean, partial: boolean } {
  const max = limit ?? Number.POSITIVE_INFINITY
  const data = Buffer.from(bytes)
  const records: string[] = []
  let start = 0
  for (let end = data.indexOf(RECORD_SEPARATOR); end !== -1; end = data.indexOf(RECORD_SEPARATOR, start)) {
    const record = data.subarray(start, end)
    if (end - start + 1 > max || !isUtf8(record)) return { records, fails: true, partial: false }
    records.push(record.toString('utf8'))
    start = end + 1
  }
  return { records, fails: data.length - start > max, partial: data.length > start }
}

const noSeparator = fc.string({ unit: 'grapheme', maxLength: 40 }).map((s) => s.replaceAll(RECORD_SEPARATOR_CHAR, ''))

t.test('valid streams: any chunking gives the same records', async (t) => {
  checkProperty(t, 'records survive any chunking', fc.property(
    fc.array(noSeparator, { maxLength: 12 }), chunkSizes,
    (texts, sizes) => {
      const stream = Buffer.from(texts.map((text) => text + RECORD_SEPARATOR_CHAR).join(''), 'utf8')
      const outcome = feed(new TextRecordSplitter(null), chunksOf(stream, sizes), null)
      return outcome.error === undefined && !outcome.partial &&
        JSON.stringify(outcome.records) === JSON.stringify(texts)
    }))
})

t.test('arbitrary bytes under a limit: the records of the whole stream, or a ProtocolError at the same record (too large, not UTF-8)', async (t) => {
  checkProperty(t, 'chunked framing matches framing the stream at once', fc.property(
    bytesWith(RECORD_SEPARATOR, 300), chunkSizes, fc.option(fc.integer({ min: 1, max: 64 }), { nil: null }),
    (bytes, sizes, limit) => {
      const outcome = feed(new TextRecordSplitter(limit), chunksOf(bytes, sizes), limit)
      const wanted = expected(bytes, limit)
      if (JSON.stringify(outcome.records) !== JSON.stringify(wanted.records)) return false
      if (!wanted.fails) return outcome.error === undefined && outcome.partial === wanted.partial
      // The clean error, and nothing of the refused record kept.
      return outcome.error instanceof ProtocolError && !outcome.partial
    }))
})
