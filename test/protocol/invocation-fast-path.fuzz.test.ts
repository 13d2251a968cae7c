/**
 * Differential fuzzing of the readers' Invocation short cuts
 * (lib/protocol/json-invocation.ts, messagepack-invocation.ts): on generated
 * invocation records, as the clients write them and mutated, the reader with
 * the short cut gives exactly what the general reader gives (the same
 * message, or the same error). Seed and runs as in the other fuzz tests:
 *   FUZZ_RUNS=100000 FUZZ_SEED=$RANDOM npx tap test/protocol/invocation-fast-path.fuzz.test.ts
 */
import fc from 'fast-check'
import { Packr, Unpackr } from 'msgpackr'
import t from 'tap'
import { parseAnyMessage as parseAnyJson, parseMessage as parseJson, safeJsonParse } from '../../lib/protocol/json.js'
import { readCommonInvocation as jsonShortCut } from '../../lib/protocol/json-invocation.js'
import { parseAnyMessage as parseAnyPack, parseMessage as parsePack } from '../../lib/protocol/messagepack.js'
import { readCommonInvocation as packShortCut } from '../../lib/protocol/messagepack-invocation.js'
import { ProtocolError } from '../../lib/protocol/protocol-error.js'
import { checkProperty } from '../helpers/framing-fuzz.js'
import { sameData, wireValue } from '../helpers/hub-message-fuzz.js'

type Outcome = { message: unknown } | { error: string }

function outcome<R> (parse: (record: R) => unknown, record: R): Outcome {
  try {
    return { message: parse(record) }
  } catch (err) {
    if (!(err instanceof ProtocolError)) throw err
    return { error: err.message }
  }
}

/** Both readers over the same records, in order (the short cuts remember the last target). */
function sameOutcomes<R> (records: R[], fast: (record: R) => unknown, general: (record: R) => unknown): boolean {
  return records.every((record) => sameData(outcome(fast, record), outcome(general, record)))
}

/** Plain ids and targets (what the short cuts take), and everything that sends them to the general reader. */
const plain = fc.string({ unit: fc.constantFrom(...'abcEchoBroadcast0123456789_-. '), maxLength: 12 })
const awkward = fc.string({ unit: 'binary', maxLength: 8 })
const text = fc.oneof(plain, plain, awkward, fc.constantFrom('', '__proto__', 'constructor', 'a"b', 'a\\b', 'é', '\u0001'))

const argumentsJson = fc.oneof(
  fc.array(wireValue(), { maxLength: 3 }).map((args) => JSON.stringify(args)),
  fc.jsonValue({ maxDepth: 2 }).map((v) => JSON.stringify(v)),
  fc.constantFrom(
    '[{"__proto__":{"x":1}}]', '[{"\\u005f\\u005fproto\\u005f\\u005f":{"x":1}}]',
    '[{"constructor":{"prototype":{"x":1}}}]', '[ 1 , "a" ]', ' [1]', '[1] ', '[]', '[1],"streamIds":["s"]',
    '[1],"x":2', '[', ']', '"]"', '[1]]', '[1],"invocationId":"9"'
  )
)

/** A record as the JavaScript client (`target` first) or the .NET client (`type` first) writes it. */
const clientRecord = fc.record({
  order: fc.constantFrom('js', 'dotnet'),
  id: fc.option(text, { nil: undefined }),
  target: text,
  args: argumentsJson
}).map(({ order, id, target, args }) => {
  const idPart = id === undefined ? '' : `"invocationId":${JSON.stringify(id)}`
  return order === 'js'
    ? `{"target":${JSON.stringify(target)},"arguments":${args}${id === undefined ? '' : ',' + idPart},"type":1}`
    : `{"type":1,${id === undefined ? '' : idPart + ','}"target":${JSON.stringify(target)},"arguments":${args}}`
})

/** One edit at a relative position: a character inserted, removed or replaced. */
const mutation = fc.record({
  kind: fc.constantFrom('none', 'insert', 'delete', 'replace'),
  at: fc.double({ min: 0, max: 1, noNaN: true }),
  char: fc.constantFrom('"', '\\', ',', '}', ']', '[', '{', ' ', '\u0001', '1', ':', 'x')
})

function mutate (record: string, m: { kind: string, at: number, char: string }): string {
  const i = Math.min(record.length - 1, Math.floor(m.at * record.length))
  switch (m.kind) {
    case 'insert': return record.slice(0, i) + m.char + record.slice(i)
    case 'delete': return record.slice(0, i) + record.slice(i + 1)
    case 'replace': return record.slice(0, i) + m.char + record.slice(i + 1)
    default: return record
  }
}

t.test('JSON: the short cut reads every invocation record as the general reader does', async (t) => {
  checkProperty(t, 'client-shaped records, mutated or not',
    fc.property(fc.array(fc.tuple(clientRecord, mutation), { minLength: 1, maxLength: 4 }), (pairs) =>
      sameOutcomes(pairs.map(([record, m]) => mutate(record, m)), parseJson, parseAnyJson)))
})

t.test('JSON: the short cut does take the clients\' records', async (t) => {
  checkProperty(t, 'plain ids and targets, array arguments: never left to the general reader',
    fc.property(fc.constantFrom('js', 'dotnet'), fc.option(plain, { nil: undefined }), plain.filter((s) => s !== ''),
      fc.array(wireValue(), { maxLength: 3 }), (order, id, target, args) => {
        const idPart = id === undefined ? '' : `"invocationId":"${id}"`
        const record = order === 'js'
          ? `{"target":"${target}","arguments":${JSON.stringify(args)}${id === undefined ? '' : ',' + idPart},"type":1}`
          : `{"type":1,${id === undefined ? '' : idPart + ','}"target":"${target}","arguments":${JSON.stringify(args)}}`
        const fast = jsonShortCut(record, safeJsonParse)
        return fast !== null && sameData(fast, parseAnyJson(record))
      }))
})

/** As the official MessagePack client encodes (msgpackr writes the same bytes for these values). */
const packr = new Packr({ useRecords: false, variableMapSize: true })
const ascii = fc.string({ unit: fc.integer({ min: 0, max: 0x7f }).map((c) => String.fromCharCode(c)), maxLength: 40 })

/** Strings whose UTF-8 is not ASCII: msgpackr's decoding is the reference for them. */
const nonAscii = fc.oneof(fc.constantFrom('é', '€', 'Echo\u0080', '\u{1f600}', '\ud800'), fc.string({ unit: 'binary', minLength: 1, maxLength: 6 }))

const clientBody = fc.record({
  headers: fc.oneof(fc.constant({}), fc.constant({}), fc.constant({}), fc.constant({ a: 'b' }), fc.constant(null)),
  id: fc.oneof(fc.constant(null), ascii, nonAscii, text, fc.integer()),
  target: fc.oneof(ascii, ascii, nonAscii, text, fc.string({ minLength: 256, maxLength: 300 }), fc.integer()),
  args: fc.oneof(fc.array(wireValue([fc.uint8Array({ maxLength: 4 })]), { maxLength: 3 }), wireValue(),
    fc.constant([{ __proto__: null, constructor: { prototype: { x: 1 } } }])),
  streamIds: fc.option(fc.array(ascii, { maxLength: 2 }), { nil: undefined, freq: 3 })
}).map(({ headers, id, target, args, streamIds }) =>
  packr.pack(streamIds === undefined ? [1, headers, id, target, args] : [1, headers, id, target, args, streamIds]))

const byteEdit = fc.record({
  kind: fc.constantFrom('none', 'none', 'flip', 'truncate', 'append'),
  at: fc.double({ min: 0, max: 1, noNaN: true }),
  byte: fc.integer({ min: 0, max: 255 })
})

function editBytes (body: Buffer, e: { kind: string, at: number, byte: number }): Buffer {
  const i = Math.min(body.length - 1, Math.floor(e.at * body.length))
  const copy = Buffer.from(body)
  switch (e.kind) {
    case 'flip': copy[i] = e.byte; return copy
    case 'truncate': return copy.subarray(0, i)
    case 'append': return Buffer.concat([copy, Buffer.from([e.byte])])
    default: return copy
  }
}

t.test('MessagePack: the short cut reads every invocation body as the general reader does', async (t) => {
  checkProperty(t, 'client-shaped bodies, edited or not',
    fc.property(fc.array(fc.tuple(clientBody, byteEdit), { minLength: 1, maxLength: 4 }), (pairs) =>
      sameOutcomes(pairs.map(([body, e]) => editBytes(body, e)), parsePack, parseAnyPack)))
})

t.test('MessagePack: the short cut does take the clients\' bodies', async (t) => {
  const unpackr = new Unpackr({ useRecords: false, mapsAsObjects: true, moreTypes: false, int64AsType: 'number' })
  const unpackFrom = (body: Buffer, start: number): unknown => unpackr.unpack(body, { start, end: body.length })
  checkProperty(t, 'ASCII ids and targets, array arguments: never left to the general reader',
    fc.property(fc.option(ascii, { nil: null }), ascii, fc.array(wireValue(), { maxLength: 3 }), (id, target, args) => {
      const body = packr.pack([1, {}, id, target, args])
      const fast = packShortCut(body, unpackFrom)
      return fast !== null && sameData(fast, parseAnyPack(body)) && sameData(parsePack(body), parseAnyPack(body))
    }))
})
