/**
 * Property-based fuzzing of the JSON hub codec (lib/protocol/json.ts) with fast-check.
 * CI: a fixed seed (FUZZ_SEED, default 0x51a7 in test/helpers/framing-fuzz.ts)
 * and FUZZ_RUNS runs per property (default 300). By hand, for a longer run:
 *   FUZZ_RUNS=100000 FUZZ_SEED=$RANDOM npx tap test/protocol/json.fuzz.test.ts
 * A failure prints fast-check's counterexample and the seed to replay it.
 */
import fc from 'fast-check'
import t from 'tap'
import { jsonProtocol } from '../../lib/protocol/json.js'
import { RECORD_SEPARATOR_CHAR } from '../../lib/protocol/text-framing.js'
import { bytesWith, checkProperty, chunkSizes } from '../helpers/framing-fuzz.js'
import { hubMessage, normalized, readAll, sameData, sameWholeAndChunked, wireValue } from '../helpers/hub-message-fuzz.js'

const RS = 0x1e

/** Record texts that look like hub messages: known keys, wrong types, escapes, nesting. */
const messageLikeRecord = fc.oneof(
  fc.json({ maxDepth: 3 }),
  fc.record({
    type: fc.oneof(fc.integer({ min: -1, max: 11 }), fc.string({ maxLength: 2 }), fc.constant(null)),
    invocationId: fc.oneof(fc.string({ maxLength: 4 }), fc.integer(), fc.constant(null)),
    target: fc.oneof(fc.string({ maxLength: 6 }), fc.integer()),
    arguments: fc.oneof(fc.jsonValue({ maxDepth: 3 }), fc.array(fc.jsonValue({ maxDepth: 3 }), { maxLength: 3 })),
    item: fc.jsonValue({ maxDepth: 3 }),
    result: fc.jsonValue({ maxDepth: 3 }),
    error: fc.oneof(fc.string({ maxLength: 6 }), fc.integer()),
    headers: fc.jsonValue({ maxDepth: 2 }),
    streamIds: fc.jsonValue({ maxDepth: 2 }),
    allowReconnect: fc.jsonValue({ maxDepth: 1 }),
    sequenceId: fc.jsonValue({ maxDepth: 1 })
  }, { requiredKeys: [] }).map((o) => JSON.stringify(o)),
  // Keys spelled with escapes, the way an attacker hides them.
  fc.constantFrom(
    '{"type":1,"target":"T","arguments":[{"\\u005f\\u005fproto\\u005f\\u005f":{"x":1}}]}',
    '{"type":1,"target":"T","arguments":[{"constructo\\u0072":{"prototype":{"x":1}}}]}',
    // Deeper than every limit, yet within what the comparison below can walk.
    '{"type":1,"target":"T","arguments":[' + '['.repeat(1500) + ']'.repeat(1500) + ']}',
    '{"type":2,"invocationId":"\\u0031","item":' + '{"a":'.repeat(3000) + '1' + '}'.repeat(3000) + ',"k":"\\u0041"}'
  )
).map((text) => text.replaceAll(RECORD_SEPARATOR_CHAR, ''))

function recordsToBytes (records: string[], cut: boolean): Uint8Array {
  const text = records.join(RECORD_SEPARATOR_CHAR) + (cut ? '' : RECORD_SEPARATOR_CHAR)
  return Buffer.from(text, 'utf8')
}

t.test('arbitrary bytes: the same messages or the same ProtocolError, whatever the chunking', async (t) => {
  checkProperty(t, 'random bytes rich in record separators',
    fc.property(bytesWith(RS, 200), chunkSizes, (bytes, sizes) => sameWholeAndChunked(jsonProtocol, bytes, sizes)))
  checkProperty(t, 'records that look like hub messages',
    fc.property(fc.array(messageLikeRecord, { maxLength: 5 }), fc.boolean(), chunkSizes,
      (records, cut, sizes) => sameWholeAndChunked(jsonProtocol, recordsToBytes(records, cut), sizes)))
})

t.test('valid messages: written, cut anywhere and read back unchanged', async (t) => {
  checkProperty(t, 'encode -> chunks -> read is the identity',
    fc.property(fc.array(hubMessage(wireValue()), { minLength: 1, maxLength: 6 }), chunkSizes, (messages, sizes) => {
      const bytes = Buffer.concat(messages.map((m) => jsonProtocol.encode(m)))
      const read = readAll(jsonProtocol, bytes, sizes)
      return read.error === null && sameData(read.messages, messages.map(normalized))
    }))
})

t.test('no parsed value carries a prototype key', async (t) => {
  const poisoned = (value: unknown): boolean => {
    if (value === null || typeof value !== 'object') return false
    if (Object.hasOwn(value, '__proto__') || Object.getPrototypeOf(value) !== (Array.isArray(value) ? Array.prototype : Object.prototype)) return true
    const ctor = (value as Record<string, unknown>).constructor
    if (Object.hasOwn(value, 'constructor') && ctor !== null && typeof ctor === 'object' && 'prototype' in ctor) return true
    return Object.values(value).some(poisoned)
  }
  const escapedKey = fc.constantFrom('__proto__', 'constructor', 'prototype', 'a').chain((k) =>
    fc.array(fc.boolean(), { minLength: k.length, maxLength: k.length })
      .map((escape) => [...k].map((c, i) => escape[i] === true ? `\\u${c.charCodeAt(0).toString(16).padStart(4, '0')}` : c).join('')))
  const objectText: fc.Arbitrary<string> = fc.letrec<{ obj: string }>((tie) => ({
    obj: fc.array(fc.tuple(escapedKey, fc.oneof({ depthSize: 'small' }, fc.constant('1'), fc.constant('{"prototype":{"x":1}}'), tie('obj'))), { maxLength: 3 })
      .map((entries) => '{' + entries.map(([k, v]) => `"${k}":${v}`).join(',') + '}')
  })).obj
  checkProperty(t, 'escaped or plain __proto__ / constructor.prototype never reach the message',
    fc.property(objectText, (text) => {
      const read = readAll(jsonProtocol, Buffer.from(`{"type":1,"target":"T","arguments":[${text}]}\u001e`), [])
      return read.error === null && !read.messages.some(poisoned)
    }))
})
