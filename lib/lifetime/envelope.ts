import { randomBytes } from 'node:crypto'
import { Packr, Unpackr } from 'msgpackr'
import type { Target } from './lifetime-manager.js'

/**
 * Every payload on the backplane is a fixed-size header, the publisher's
 * 16-byte origin id, followed by one MessagePack array (documented in the
 * README so other services can publish). The header lets a server drop its
 * own publications with one byte comparison, without decoding anything.
 */
export const ORIGIN_BYTES = 16

/**
 * [1, target, jsonBytes, messagePackBytes, others?]. The JSON and MessagePack
 * encodings are always there: every server can read them (both codecs are
 * built in, enabled or not), so they are the portable forms, and services
 * without a hub can publish them. `others`, present when the publisher serves
 * further protocols, maps a protocol name to that protocol's bytes. A server
 * with clients of a protocol the envelope lacks writes its bytes from the
 * MessagePack form (which keeps binary values and dates).
 */
export const SEND = 1
export const GROUP = 2 // [2, requestId, connectionId, groupName, add]
export const INVOKE = 3 // [3, requestId, connectionId, method, args]
export const REPLY = 4 // [4, requestId, ok, resultOrErrorText, errorCode?]

export type Envelope =
  | readonly [typeof SEND, Target, Uint8Array, Uint8Array]
  | readonly [typeof SEND, Target, Uint8Array, Uint8Array, EncodingsByName]
  | readonly [typeof GROUP, string, string, string, boolean]
  | readonly [typeof INVOKE, string, string, string, unknown[]]
  // The code of a failure (errors.ts) lets the asker rebuild the same error; absent from older servers.
  | readonly [typeof REPLY, string, boolean, unknown, (string | null)?]

/** Encodings of a message by protocol name, beyond the two portable ones. */
export type EncodingsByName = Readonly<Record<string, Uint8Array>>

const packr = new Packr({ useRecords: false, moreTypes: false, variableMapSize: true, encodeUndefinedAsNil: true })
const unpackr = new Unpackr({ useRecords: false, mapsAsObjects: true, moreTypes: false })

/** A new origin: 16 random bytes, and their base64url text for the ack channel. */
export function newOrigin (): { bytes: Buffer, id: string } {
  const bytes = randomBytes(ORIGIN_BYTES)
  return { bytes, id: bytes.toString('base64url') }
}

export function pack (origin: Buffer, envelope: Envelope): Buffer {
  const body = packr.pack(envelope)
  const payload = Buffer.allocUnsafe(ORIGIN_BYTES + body.length)
  origin.copy(payload, 0)
  body.copy(payload, ORIGIN_BYTES)
  return payload
}

/** True when `payload` was published by `origin` (checked before anything is decoded). */
export function isFrom (payload: Buffer, origin: Buffer): boolean {
  return payload.length >= ORIGIN_BYTES && Buffer.compare(payload.subarray(0, ORIGIN_BYTES), origin) === 0
}

/** The origin id (base64url) of a payload, to address the answer to a request. */
export function originOf (payload: Buffer): string {
  return payload.toString('base64url', 0, ORIGIN_BYTES)
}

/**
 * Decodes and checks a payload. Anything may arrive on a channel (another
 * service, another version, noise), so a payload that is not exactly one of
 * the documented envelopes is refused with the reason, never trusted.
 */
export function unpack (payload: Buffer): Envelope | string {
  if (payload.length <= ORIGIN_BYTES) return 'shorter than its header'
  let value: unknown
  try {
    value = unpackr.unpack(payload.subarray(ORIGIN_BYTES))
  } catch {
    return 'not MessagePack'
  }
  if (!Array.isArray(value)) return 'not an array'
  switch (value[0]) {
    case SEND:
      if ((value.length === 4 || (value.length === 5 && isEncodings(value[4]))) && isTarget(value[1]) &&
        value[2] instanceof Uint8Array && value[3] instanceof Uint8Array) {
        return value as unknown as Envelope
      }
      return 'not a valid send'
    case GROUP:
      if (value.length === 5 && typeof value[1] === 'string' && typeof value[2] === 'string' && typeof value[3] === 'string' &&
        typeof value[4] === 'boolean') return value as unknown as Envelope
      return 'not a valid group change'
    case INVOKE:
      if (value.length === 5 && typeof value[1] === 'string' && typeof value[2] === 'string' && typeof value[3] === 'string' &&
        Array.isArray(value[4])) return value as unknown as Envelope
      return 'not a valid client result request'
    case REPLY:
      if ((value.length === 4 || (value.length === 5 && (value[4] === null || typeof value[4] === 'string'))) &&
        typeof value[1] === 'string' && typeof value[2] === 'boolean') return value as unknown as Envelope
      return 'not a valid reply'
    default:
      return 'of an unknown kind'
  }
}

function isEncodings (value: unknown): value is EncodingsByName {
  if (value === null || typeof value !== 'object' || Array.isArray(value) || value instanceof Uint8Array) return false
  for (const key in value) {
    if (!((value as Record<string, unknown>)[key] instanceof Uint8Array)) return false
  }
  return true
}

function isStrings (value: unknown): value is string[] {
  return Array.isArray(value) && value.every((v) => typeof v === 'string')
}

/** Checks a target, filling in an absent `exclude` as null. */
function isTarget (value: unknown): value is Target {
  if (value === null || typeof value !== 'object') return false
  const t = value as Record<string, unknown>
  switch (t.kind) {
    case 'all':
      t.exclude ??= null // an outside publisher may leave it out
      return t.exclude === null || isStrings(t.exclude)
    case 'connections': return isStrings(t.ids)
    case 'users': return isStrings(t.ids)
    case 'groups':
      t.exclude ??= null
      return isStrings(t.names) && (t.exclude === null || isStrings(t.exclude))
    default: return false
  }
}
