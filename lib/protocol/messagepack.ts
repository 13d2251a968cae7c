import { Packr, Unpackr } from 'msgpackr'
import { frameBinary, lengthPrefixFraming, lengthPrefixSize, putLengthPrefix } from './binary-framing.js'
import type { HubProtocolDefinition } from './hub-protocol.js'
import { MessageType, PING, type Headers, type HubMessage } from './messages.js'
import { ProtocolError } from './protocol-error.js'
import { readCommonInvocation } from './messagepack-invocation.js'
import { registerProtocol } from './registry.js'
import { scanMessagePack, SUSPICIOUS_KEY } from './messagepack-scan.js'
import { inspectOutgoing, inspectOutgoingList, isPlainId, MAX_VALUE_DEPTH, putLatin1 } from './values.js'
import { SerializationError } from '../errors.js'

/*
 * msgpackr over @msgpack/msgpack (what the official client uses): on our hub
 * messages it encodes about 8x and decodes about 3x faster (bench notes in
 * bench/RESULTS.md). With `variableMapSize` and records off it writes the same
 * bytes as the client's library; Dates are timestamp extension -1 and byte
 * arrays `bin`, both ways, as ASP.NET writes them.
 *
 * Reading, only what the SignalR MessagePack protocol defines comes out: a
 * scan (messagepack-scan.ts) refuses msgpackr's own extensions and 0xc1
 * before msgpackr sees the bytes. int64/uint64 become numbers: exact up to
 * 2^53, rounded beyond it, exactly as the official JavaScript client and
 * JSON.parse treat such numbers (never a BigInt, which zod's z.number() and
 * the JSON writer would refuse).
 */
const packr = new Packr({ useRecords: false, moreTypes: false, variableMapSize: true, encodeUndefinedAsNil: true })
const unpackr = new Unpackr({ useRecords: false, mapsAsObjects: true, moreTypes: false, int64AsType: 'number' })

/** Containers a message may nest: a value at MAX_VALUE_DEPTH plus the message array and the argument list. */
const MAX_WIRE_DEPTH = MAX_VALUE_DEPTH + 2

const EMPTY_HEADERS = Object.freeze({})
const NO_STREAMS: readonly string[] = Object.freeze([])

/** Completion result kinds of the MessagePack layout. */
const ERROR_RESULT = 1
const VOID_RESULT = 2
const NON_VOID_RESULT = 3

/** The MessagePack hub protocol (`"protocol":"messagepack"`): length-prefixed arrays, binary frames only. */
export const messagePackHubProtocol: HubProtocolDefinition<Buffer> = Object.freeze({
  name: 'messagepack',
  version: 2,
  transferFormat: 'binary',
  framing: lengthPrefixFraming,
  parse: parseMessage,
  write (message: HubMessage) {
    checkValues(message)
    return frameBinary(pack(toArray(message)))
  },
  writeResult (invocationId: string, result: unknown) {
    // Longer ids would need a wider string header; the clients' counters never get there.
    if (!isPlainId(invocationId) || invocationId.length > 31) {
      return messagePackHubProtocol.write({ type: MessageType.Completion, invocationId, hasResult: true, result })
    }
    inspectOutgoing(result)
    return writeResultCompletion(invocationId, pack(result ?? null))
  }
})

export const messagePackProtocol = registerProtocol(messagePackHubProtocol)

/** msgpackr's output is a view into its own buffer, overwritten by the next call: copy it before packing again. */
function pack (value: unknown): Buffer {
  try {
    return packr.pack(value)
  } catch (err) {
    throw new SerializationError(`The value could not be written as MessagePack: ${(err as Error).message}`)
  }
}

/**
 * `[3, {}, "<id>", 3, <result>]` with its length prefix, in one buffer: the
 * bytes msgpackr writes for that array (fixarray, empty fixmap, fixstr id),
 * without making the array. `id` is plain ASCII of at most 31 bytes.
 */
function writeResultCompletion (invocationId: string, packed: Buffer): Buffer {
  const bodyLength = 4 + invocationId.length + 1 + packed.length
  const out = Buffer.allocUnsafe(lengthPrefixSize(bodyLength) + bodyLength)
  let at = putLengthPrefix(out, bodyLength)
  out[at++] = 0x95 // fixarray of 5
  out[at++] = MessageType.Completion
  out[at++] = 0x80 // no headers: an empty fixmap
  out[at++] = 0xa0 | invocationId.length // fixstr
  at += putLatin1(out, invocationId, at)
  out[at++] = NON_VOID_RESULT
  out.set(packed, at)
  return out
}

/** The same limits as the JSON writer (values.ts), so both protocols refuse the same values. */
function checkValues (m: HubMessage): void {
  switch (m.type) {
    case MessageType.Invocation:
    case MessageType.StreamInvocation:
      inspectOutgoingList(m.arguments)
      return
    case MessageType.StreamItem:
      inspectOutgoing(m.item)
      return
    case MessageType.Completion:
      if (m.hasResult) inspectOutgoing(m.result)
  }
}

function headersOf (headers: Headers | undefined): Headers {
  return headers === undefined ? EMPTY_HEADERS : headers
}

function toArray (m: HubMessage): unknown[] {
  switch (m.type) {
    case MessageType.Invocation:
    case MessageType.StreamInvocation:
      // ASP.NET writes 6 elements, the last an (empty) stream id list; the client reads 5.
      return [m.type, headersOf(m.headers), m.invocationId ?? null, m.target, m.arguments, m.streamIds ?? NO_STREAMS]
    case MessageType.StreamItem:
      return [2, headersOf(m.headers), m.invocationId, m.item]
    case MessageType.Completion:
      if (m.error !== undefined) return [3, headersOf(m.headers), m.invocationId, ERROR_RESULT, m.error]
      if (!m.hasResult) return [3, headersOf(m.headers), m.invocationId, VOID_RESULT]
      return [3, headersOf(m.headers), m.invocationId, NON_VOID_RESULT, m.result ?? null]
    case MessageType.CancelInvocation:
      return [5, headersOf(m.headers), m.invocationId]
    case MessageType.Ping:
      return [6]
    case MessageType.Close:
      return [7, m.error ?? null, m.allowReconnect === true]
    case MessageType.Ack:
    case MessageType.Sequence:
      return [m.type, m.sequenceId]
  }
}

function fail (what: string): never {
  throw new ProtocolError(`Invalid payload for ${what} message.`)
}

function readHeaders (value: unknown, what: string): Headers | undefined {
  if (value === null || value === undefined) return undefined
  if (typeof value !== 'object' || Array.isArray(value)) fail(what)
  // Any key at all? (without allocating Object.keys)
  // eslint-disable-next-line no-unreachable-loop
  for (const _ in value as object) return value as Headers
  return undefined
}

function readId (value: unknown, what: string): string {
  if (typeof value !== 'string') fail(what)
  return value
}

function readStreamIds (value: unknown, what: string): string[] | undefined {
  if (value === undefined || value === null) return undefined
  if (!Array.isArray(value) || !value.every((v) => typeof v === 'string')) fail(what)
  return value.length === 0 ? undefined : value as string[]
}

/** msgpackr's range option, reused: msgpackr reads it at once and keeps nothing. */
const RANGE = { start: 0, end: 0 }
/** What `unpackArguments` answers for bytes msgpackr refuses: not an array, so the general reader runs and reports. */
const UNREADABLE = Symbol('unreadable')

function unpackArguments (body: Buffer, start: number): unknown {
  RANGE.start = start
  RANGE.end = body.length
  try {
    return unpackr.unpack(body, RANGE)
  } catch {
    return UNREADABLE
  }
}

/** Reads one body: checked by the scan, then the clients' usual Invocation by the short cut, anything else in full. */
export function parseMessage (body: Buffer): HubMessage | undefined {
  const flags = scanMessagePack(body, MAX_WIRE_DEPTH)
  const invocation = readCommonInvocation(body, unpackArguments)
  if (invocation !== null) {
    if ((flags & SUSPICIOUS_KEY) !== 0) dropPoisonedKeys(invocation.arguments)
    return invocation
  }
  return readScanned(body, flags)
}

/** The general reader: any message (the scan already passed), with SignalR's error texts. */
export function parseAnyMessage (body: Buffer): HubMessage | undefined {
  return readScanned(body, scanMessagePack(body, MAX_WIRE_DEPTH))
}

function readScanned (body: Buffer, flags: number): HubMessage | undefined {
  let raw: unknown
  try {
    raw = unpackr.unpack(body)
  } catch {
    throw new ProtocolError('Error reading MessagePack data.')
  }
  if ((flags & SUSPICIOUS_KEY) !== 0) dropPoisonedKeys(raw)
  if (!Array.isArray(raw) || raw.length === 0) throw new ProtocolError('Message is not a MessagePack array.')
  const type = raw[0]
  if (typeof type !== 'number') throw new ProtocolError('Message type is not a number.')
  switch (type) {
    case MessageType.Invocation:
    case MessageType.StreamInvocation: {
      const what = type === MessageType.Invocation ? 'Invocation' : 'StreamInvocation'
      if (raw.length < 5) fail(what)
      const headers = readHeaders(raw[1], what)
      let invocationId = raw[2] === null || raw[2] === undefined ? undefined : readId(raw[2], what)
      if (invocationId === '') invocationId = undefined
      const target = raw[3]
      const args = raw[4]
      if (typeof target !== 'string' || !Array.isArray(args)) fail(what)
      const streamIds = readStreamIds(raw[5], what)
      if (type === MessageType.StreamInvocation) {
        if (invocationId === undefined) fail(what)
        return { type, headers, invocationId, target, arguments: args, streamIds }
      }
      return { type, headers, invocationId, target, arguments: args, streamIds }
    }
    case MessageType.StreamItem:
      if (raw.length < 4) fail('StreamItem')
      return { type, headers: readHeaders(raw[1], 'StreamItem'), invocationId: readId(raw[2], 'StreamItem'), item: raw[3] }
    case MessageType.Completion: {
      if (raw.length < 4) fail('Completion')
      const headers = readHeaders(raw[1], 'Completion')
      const invocationId = readId(raw[2], 'Completion')
      const kind = raw[3]
      if (kind === ERROR_RESULT) {
        if (raw.length < 5 || typeof raw[4] !== 'string') fail('Completion')
        return { type, headers, invocationId, error: raw[4], hasResult: false }
      }
      if (kind === VOID_RESULT) return { type, headers, invocationId, hasResult: false }
      if (kind === NON_VOID_RESULT) {
        if (raw.length < 5) fail('Completion')
        return { type, headers, invocationId, hasResult: true, result: raw[4] }
      }
      throw new ProtocolError('Invalid invocation result kind.')
    }
    case MessageType.CancelInvocation:
      if (raw.length < 3) fail('CancelInvocation')
      return { type, headers: readHeaders(raw[1], 'CancelInvocation'), invocationId: readId(raw[2], 'CancelInvocation') }
    case MessageType.Ping:
      return PING
    case MessageType.Close: {
      if (raw.length < 2) fail('Close')
      const error = raw[1]
      if (error !== null && error !== undefined && typeof error !== 'string') fail('Close')
      const allowReconnect = raw[2]
      if (allowReconnect !== undefined && allowReconnect !== null && typeof allowReconnect !== 'boolean') fail('Close')
      return { type, error: error ?? undefined, allowReconnect: allowReconnect === true ? true : undefined }
    }
    case MessageType.Ack:
    case MessageType.Sequence: {
      const sequenceId = raw[1]
      if (typeof sequenceId !== 'number') fail(type === MessageType.Ack ? 'Ack' : 'Sequence')
      return { type, sequenceId }
    }
    default:
      return undefined
  }
}

/**
 * Removes what could poison a prototype when hub code merges the value, by the
 * same rule as the JSON reader: `__proto__` keys (msgpackr stores them as
 * `__proto_`, so that name goes too) and `constructor` keys holding a
 * `prototype`. Only run when the scan saw such a key.
 */
function dropPoisonedKeys (value: unknown): void {
  if (value === null || typeof value !== 'object' || ArrayBuffer.isView(value) || value instanceof Date) return
  if (Array.isArray(value)) {
    for (let i = 0; i < value.length; i++) dropPoisonedKeys(value[i])
    return
  }
  const obj = value as Record<string, unknown>
  for (const key of Object.keys(obj)) {
    const inner = obj[key]
    if (key === '__proto_' || key === '__proto__' ||
      (key === 'constructor' && inner !== null && typeof inner === 'object' && 'prototype' in inner)) {
      delete obj[key]
      continue
    }
    dropPoisonedKeys(inner)
  }
}
