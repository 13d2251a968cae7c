/**
 * Property-based fuzzing of the MessagePack hub codec (lib/protocol/messagepack.ts,
 * with its pre-scan messagepack-scan.ts) with fast-check.
 * CI: a fixed seed (FUZZ_SEED, default 0x51a7 in test/helpers/framing-fuzz.ts)
 * and FUZZ_RUNS runs per property (default 300). By hand, for a longer run:
 *   FUZZ_RUNS=100000 FUZZ_SEED=$RANDOM npx tap test/protocol/messagepack.fuzz.test.ts
 * A failure prints fast-check's counterexample and the seed to replay it.
 */
import fc from 'fast-check'
import { Packr } from 'msgpackr'
import t from 'tap'
import { frameBinary } from '../../lib/protocol/binary-framing.js'
import { messagePackProtocol } from '../../lib/protocol/messagepack.js'
import { bytesWith, checkProperty, chunkSizes } from '../helpers/framing-fuzz.js'
import { hubMessage, normalized, readAll, sameData, sameWholeAndChunked, wireValue } from '../helpers/hub-message-fuzz.js'

/** msgpackr with everything on: its own extensions, structured clone, records. */
const everythingPackr = new Packr({ moreTypes: true, structuredClone: true, useRecords: true })

/** True when every value in `value` is of a type the SignalR MessagePack protocol defines. */
function onlySignalRTypes (value: unknown): boolean {
  const stack = [value]
  while (stack.length > 0) {
    const v = stack.pop()
    if (v === null || v === undefined || typeof v === 'boolean' || typeof v === 'number' || typeof v === 'string') continue
    if (typeof v !== 'object') return false
    if (v instanceof Date || Buffer.isBuffer(v)) continue
    const proto = Object.getPrototypeOf(v) as unknown
    if (proto !== Array.prototype && proto !== Object.prototype) return false
    if (Object.hasOwn(v, '__proto__')) return false
    stack.push(...Object.values(v))
  }
  return true
}

/** Bodies of hub messages whose values msgpackr wrote with every extension it has. */
const exoticBody = fc.tuple(
  fc.constantFrom(1, 2, 3, 4),
  fc.array(fc.anything({ maxDepth: 2, withBigInt: true, withDate: true, withMap: true, withSet: true, withTypedArray: true, withSparseArray: true, withNullPrototype: true, withBoxedValues: true }), { maxLength: 3 })
).map(([type, values]) => {
  try {
    const body = type === 1 || type === 4
      ? everythingPackr.pack([type, {}, 'id', 'Target', values])
      : type === 2 ? everythingPackr.pack([2, {}, 'id', values]) : everythingPackr.pack([3, {}, 'id', 3, values])
    return frameBinary(body)
  } catch {
    return frameBinary(Buffer.from([0x91, 0x06])) // a value msgpackr itself cannot write: a ping instead
  }
})

/** Invocation [1, {}, "1", "T", [ ... with a value that claims far more than the bytes that follow. */
const INVOCATION_HEAD = [0x95, 0x01, 0x80, 0xa1, 0x31, 0xa1, 0x54, 0x91]

/** A message array header followed by a container or string that claims far more than the bytes that follow. */
const overclaiming = fc.tuple(
  fc.constantFrom(0xdc, 0xdd, 0xde, 0xdf, 0xc6, 0xdb, 0xc5, 0xda),
  fc.integer({ min: 8, max: 0xffffffff }),
  fc.uint8Array({ maxLength: 6 })
).map(([token, length, tail]) => {
  const size = token === 0xdc || token === 0xde || token === 0xc5 || token === 0xda ? 2 : 4
  const header = Buffer.alloc(1 + size)
  header[0] = token
  if (size === 2) header.writeUInt16BE(length & 0xffff, 1)
  else header.writeUInt32BE(length, 1)
  return frameBinary(Buffer.concat([Buffer.from(INVOCATION_HEAD), header, tail]))
})

t.test('arbitrary bytes: the same messages or the same ProtocolError, whatever the chunking', async (t) => {
  checkProperty(t, 'random bytes rich in continuation bits',
    fc.property(bytesWith(0x80, 200), chunkSizes, (bytes, sizes) => sameWholeAndChunked(messagePackProtocol, bytes, sizes)))
  checkProperty(t, 'framed random bodies that start like a message',
    fc.property(fc.array(fc.tuple(fc.constantFrom(0x91, 0x93, 0x94, 0x95, 0x96), fc.uint8Array({ maxLength: 30 }))
      .map(([head, rest]) => frameBinary(Buffer.concat([Buffer.from([head]), rest]))), { maxLength: 4 }), chunkSizes,
    (frames, sizes) => sameWholeAndChunked(messagePackProtocol, Buffer.concat(frames), sizes)))
})

t.test('valid messages: written, cut anywhere and read back unchanged', async (t) => {
  const withBytesAndDates = wireValue([
    fc.uint8Array({ maxLength: 8 }).map((b) => Buffer.from(b)),
    fc.date({ noInvalidDate: true })
  ])
  checkProperty(t, 'encode -> chunks -> read is the identity',
    fc.property(fc.array(hubMessage(withBytesAndDates), { minLength: 1, maxLength: 6 }), chunkSizes, (messages, sizes) => {
      const bytes = Buffer.concat(messages.map((m) => messagePackProtocol.encode(m)))
      const read = readAll(messagePackProtocol, bytes, sizes)
      return read.error === null && sameData(read.messages, messages.map(normalized))
    }))
})

t.test('only SignalR types come out, whatever msgpackr extensions come in', async (t) => {
  checkProperty(t, 'a message is refused or holds only nil, bool, numbers, strings, bin, timestamps, arrays and plain maps',
    fc.property(fc.array(exoticBody, { minLength: 1, maxLength: 3 }), chunkSizes, (frames, sizes) => {
      const bytes = Buffer.concat(frames)
      const read = readAll(messagePackProtocol, bytes, sizes)
      if (read.foreign.length > 0) throw new Error(`a non-protocol error was thrown: ${String(read.foreign[0])}`)
      return read.messages.every(onlySignalRTypes) && sameWholeAndChunked(messagePackProtocol, bytes, sizes)
    }))
})

t.test('bounded memory: lengths and counts beyond the data are refused before anything is allocated', async (t) => {
  checkProperty(t, 'a container or string claiming more than the message holds is a ProtocolError',
    fc.property(overclaiming, (bytes) => {
      const read = readAll(messagePackProtocol, bytes, [])
      return read.foreign.length === 0 && read.error !== null && read.error.startsWith('Error reading MessagePack data: ')
    }))
  const deep = frameBinary(Buffer.concat([Buffer.from(INVOCATION_HEAD), Buffer.alloc(100_000, 0x91), Buffer.from([0x01])]))
  const read = readAll(messagePackProtocol, deep, [])
  t.equal(read.error, 'Error reading MessagePack data: nested deeper than 514 levels.', '100 000 levels are refused by the scan, without recursion')
})
