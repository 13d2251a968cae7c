import fc from 'fast-check'
import type { HubMessage, MessageType } from '../../lib/protocol/messages.js'
import type { HubProtocol } from '../../lib/protocol/hub-protocol.js'
import { ProtocolError } from '../../lib/protocol/protocol-error.js'
import { chunksOf } from './framing-fuzz.js'

/**
 * Arbitraries and checks shared by the JSON and MessagePack codec fuzz tests
 * (test/protocol/json.fuzz.test.ts, messagepack.fuzz.test.ts).
 */

/** Keys the readers drop on purpose (prototype poisoning); generated values avoid them. */
const key = fc.string({ maxLength: 8 }).filter((k) => k !== '__proto__' && k !== '__proto_' && k !== 'constructor')

/** A dictionary with Object.prototype, as a reader makes it (fast-check's may have a null prototype). */
function plainDictionary<T> (value: fc.Arbitrary<T>): fc.Arbitrary<Record<string, T>> {
  return fc.dictionary(key, value, { maxKeys: 4 }).map((d) => ({ ...d }))
}

/** Values both protocols carry exactly: JSON data without -0 (which JSON writes as 0). */
export function wireValue (extra: Array<fc.Arbitrary<unknown>> = []): fc.Arbitrary<unknown> {
  const { value } = fc.letrec((tie) => ({
    value: fc.oneof({ depthSize: 'small', withCrossShrink: true },
      fc.constant(null), fc.boolean(), fc.integer(), fc.maxSafeInteger(),
      fc.double({ noNaN: true, noDefaultInfinity: true }).map((d) => Object.is(d, -0) ? 0 : d),
      fc.string({ unit: 'grapheme', maxLength: 12 }),
      ...extra,
      fc.array(tie('value'), { maxLength: 4 }),
      plainDictionary(tie('value')))
  }))
  return value
}

const id = fc.string({ minLength: 1, maxLength: 8 })
const headers = fc.option(plainDictionary(fc.string({ maxLength: 8 })), { nil: undefined })
const streamIds = fc.option(fc.array(id, { maxLength: 3 }), { nil: undefined })

/** Any message a peer may send or receive, with values from `value`. */
export function hubMessage (value: fc.Arbitrary<unknown>): fc.Arbitrary<HubMessage> {
  return fc.oneof(
    fc.record({ type: fc.constant(1 as typeof MessageType.Invocation), invocationId: fc.option(id, { nil: undefined }), target: fc.string({ maxLength: 10 }), arguments: fc.array(value, { maxLength: 4 }), streamIds, headers }),
    fc.record({ type: fc.constant(4 as typeof MessageType.StreamInvocation), invocationId: id, target: fc.string({ maxLength: 10 }), arguments: fc.array(value, { maxLength: 4 }), streamIds, headers }),
    fc.record({ type: fc.constant(2 as typeof MessageType.StreamItem), invocationId: id, item: value, headers }),
    fc.record({ type: fc.constant(3 as typeof MessageType.Completion), invocationId: id, hasResult: fc.constant(true), result: value, headers }),
    fc.record({ type: fc.constant(3 as typeof MessageType.Completion), invocationId: id, hasResult: fc.constant(false), error: fc.string({ maxLength: 10 }), headers }),
    fc.record({ type: fc.constant(3 as typeof MessageType.Completion), invocationId: id, hasResult: fc.constant(false), headers }),
    fc.record({ type: fc.constant(5 as typeof MessageType.CancelInvocation), invocationId: id, headers }),
    fc.constant({ type: 6 as typeof MessageType.Ping }),
    fc.record({ type: fc.constant(7 as typeof MessageType.Close), error: fc.option(fc.string({ maxLength: 10 }), { nil: undefined }), allowReconnect: fc.option(fc.boolean(), { nil: undefined }) }),
    fc.record({ type: fc.constant(8 as typeof MessageType.Ack), sequenceId: fc.nat() }),
    fc.record({ type: fc.constant(9 as typeof MessageType.Sequence), sequenceId: fc.nat() })
  ) as fc.Arbitrary<HubMessage>
}

/**
 * A message as the reader gives it back: no empty header maps or stream id
 * lists, no `allowReconnect: false` (none of them is written), and no keys
 * holding undefined.
 */
export function normalized (message: HubMessage): Record<string, unknown> {
  const out: Record<string, unknown> = {}
  for (const [k, v] of Object.entries(message)) {
    if (v === undefined) continue
    if (k === 'headers' && Object.keys(v as object).length === 0) continue
    if (k === 'streamIds' && (v as unknown[]).length === 0) continue
    if (k === 'allowReconnect' && v === false) continue
    out[k] = v
  }
  return out
}

export interface ReadOutcome {
  messages: Array<Record<string, unknown>>
  /** The first error's message; its class is checked by `assertProtocolErrors`. */
  error: string | null
  /** Every error the reader threw that was not a ProtocolError. */
  foreign: unknown[]
}

/** Feeds `bytes` to a fresh reader in the given chunk sizes, up to the first error (the connection closes there). */
export function readAll (protocol: HubProtocol, bytes: Uint8Array, sizes: readonly number[], limit: number | null = null): ReadOutcome {
  const reader = protocol.createReader(limit)
  const out: HubMessage[] = []
  const foreign: unknown[] = []
  let error: string | null = null
  for (const chunk of chunksOf(bytes, sizes)) {
    try {
      reader.read(chunk, out)
    } catch (err) {
      if (!(err instanceof ProtocolError)) foreign.push(err)
      error = (err as Error).message
      break
    }
  }
  return { messages: out.map(normalized), error, foreign }
}

/**
 * Deep equality without recursion (values here may nest thousands deep, past
 * what util.isDeepStrictEqual can walk): same kinds, same keys, same
 * prototypes, numbers by Object.is, bytes by content, dates by time.
 */
export function sameData (a: unknown, b: unknown): boolean {
  const pairs: Array<[unknown, unknown]> = [[a, b]]
  while (pairs.length > 0) {
    const [x, y] = pairs.pop()!
    if (x === null || y === null || typeof x !== 'object' || typeof y !== 'object') {
      if (!Object.is(x, y)) return false
      continue
    }
    if (x instanceof Uint8Array || y instanceof Uint8Array) {
      if (!(x instanceof Uint8Array && y instanceof Uint8Array) || !Buffer.from(x).equals(Buffer.from(y))) return false
      continue
    }
    if (x instanceof Date || y instanceof Date) {
      if (!(x instanceof Date && y instanceof Date) || !Object.is(x.getTime(), y.getTime())) return false
      continue
    }
    if (Object.getPrototypeOf(x) !== Object.getPrototypeOf(y)) return false
    const keys = Object.keys(x)
    if (keys.length !== Object.keys(y).length) return false
    for (const k of keys) {
      if (!Object.hasOwn(y, k)) return false
      pairs.push([(x as Record<string, unknown>)[k], (y as Record<string, unknown>)[k]])
    }
  }
  return true
}

/** Whole and cut into `sizes`, the same outcome; throws when a reader threw anything but a ProtocolError. */
export function sameWholeAndChunked (protocol: HubProtocol, bytes: Uint8Array, sizes: readonly number[]): boolean {
  const whole = readAll(protocol, bytes, [])
  const chunked = readAll(protocol, bytes, sizes)
  const foreign = [...whole.foreign, ...chunked.foreign]
  if (foreign.length > 0) throw new Error(`a non-protocol error was thrown: ${String(foreign[0])}`)
  return sameData(whole, chunked)
}
