import type { HubProtocolDefinition } from './hub-protocol.js'
import { MessageType, PING, type Headers, type HubMessage } from './messages.js'
import { readCommonInvocation } from './json-invocation.js'
import { ProtocolError } from './protocol-error.js'
import { registerProtocol } from './registry.js'
import { RECORD_SEPARATOR, RECORD_SEPARATOR_CHAR, recordSeparatorFraming } from './text-framing.js'
import { inspectOutgoing, inspectOutgoingList, isPlainId, putLatin1, putUtf8 } from './values.js'
import { SerializationError } from '../errors.js'

/**
 * The JSON hub protocol (`"protocol":"json"`). Property order is free on the
 * wire (the official client writes `type` last), unknown properties are skipped.
 */
export const jsonHubProtocol: HubProtocolDefinition<string> = Object.freeze({
  name: 'json',
  version: 2,
  transferFormat: 'text',
  framing: recordSeparatorFraming,
  parse: parseMessage,
  write (message: HubMessage) {
    return Buffer.from(stringifyMessage(message) + RECORD_SEPARATOR_CHAR, 'utf8')
  },
  writeText (message: HubMessage) {
    return stringifyMessage(message) + RECORD_SEPARATOR_CHAR
  },
  writeResult (invocationId: string, result: unknown) {
    return writeResultCompletion(invocationId, result) ??
      jsonHubProtocol.write({ type: MessageType.Completion, invocationId, hasResult: true, result })
  }
})

export const jsonProtocol = registerProtocol(jsonHubProtocol)

const RESULT_HEAD = '{"type":3,"invocationId":"'
const RESULT_KEY = '","result":'

/**
 * `{"type":3,"invocationId":"<id>","result":<json>}` and the separator,
 * written into one buffer: the result's JSON is the only string made (no
 * concatenation to flatten). Null when the id needs escaping or the result
 * has no JSON text (a toJSON answering undefined): `encode` handles those.
 */
function writeResultCompletion (invocationId: string, result: unknown): Buffer | null {
  if (!isPlainId(invocationId)) return null
  const json = stringifyValue(result) as string | undefined
  if (typeof json !== 'string') return null
  const idEnd = RESULT_HEAD.length + invocationId.length
  const jsonStart = idEnd + RESULT_KEY.length
  const end = jsonStart + Buffer.byteLength(json, 'utf8')
  const out = Buffer.allocUnsafe(end + 2)
  putLatin1(out, RESULT_HEAD, 0)
  putLatin1(out, invocationId, RESULT_HEAD.length)
  putLatin1(out, RESULT_KEY, idEnd)
  putUtf8(out, json, jsonStart)
  out[end] = 0x7d // }
  out[end + 1] = RECORD_SEPARATOR
  return out
}

/** Parses JSON without letting `__proto__` / `constructor.prototype` keys through. */
export function safeJsonParse (text: string): unknown {
  // A plain JSON.parse never touches prototypes itself, but hub code may merge
  // the values it receives; the reviver costs, so only pay it when a suspicious
  // key may be present: written plainly, or hidden behind a \u escape
  // ("\u005f\u005fproto\u005f\u005f" is "__proto__" once parsed).
  if (text.includes('__proto__') || text.includes('constructor') || text.includes('\\u')) {
    return JSON.parse(text, dropPoisonedKeys)
  }
  return JSON.parse(text)
}

/** A reviver: returning undefined deletes the key. */
export function dropPoisonedKeys (key: string, value: unknown): unknown {
  if (key === '__proto__') return undefined
  if (key === 'constructor' && value !== null && typeof value === 'object' && 'prototype' in value) return undefined
  return value
}

/** Reads one record: the clients' usual Invocation by the short cut, anything else in full. */
export function parseMessage (text: string): HubMessage | undefined {
  return readCommonInvocation(text, safeJsonParse) ?? parseAnyMessage(text)
}

/** The general reader: any message, in any key order, with SignalR's error texts. */
export function parseAnyMessage (text: string): HubMessage | undefined {
  let raw: unknown
  try {
    raw = safeJsonParse(text)
  } catch {
    throw new ProtocolError('Error reading JSON.')
  }
  if (raw === null || typeof raw !== 'object' || Array.isArray(raw)) {
    throw new ProtocolError('Error reading JSON.')
  }
  const obj = raw as Record<string, unknown>
  const type = obj.type
  if (type === undefined) throw new ProtocolError("Missing required property 'type'.")
  if (typeof type !== 'number') throw new ProtocolError("Expected 'type' to be of type Integer.")

  switch (type) {
    case MessageType.Invocation:
    case MessageType.StreamInvocation: {
      const target = obj.target
      if (typeof target !== 'string') throw new ProtocolError("Missing required property 'target'.")
      const args = obj.arguments
      if (!Array.isArray(args)) throw new ProtocolError("Missing required property 'arguments'.")
      let invocationId = optionalString(obj, 'invocationId')
      // ASP.NET treats an empty id like no id: a non-blocking invocation.
      if (invocationId === '') invocationId = undefined
      const streamIds = optionalStringArray(obj, 'streamIds')
      const headers = optionalHeaders(obj)
      if (type === MessageType.StreamInvocation) {
        if (invocationId === undefined) throw new ProtocolError("Missing required property 'invocationId'.")
        return { type, invocationId, target, arguments: args, streamIds, headers }
      }
      return { type, invocationId, target, arguments: args, streamIds, headers }
    }
    case MessageType.StreamItem: {
      const invocationId = requiredId(obj)
      if (!('item' in obj)) throw new ProtocolError("Missing required property 'item'.")
      return { type, invocationId, item: obj.item, headers: optionalHeaders(obj) }
    }
    case MessageType.Completion: {
      const invocationId = requiredId(obj)
      const error = optionalString(obj, 'error')
      const hasResult = 'result' in obj
      if (error !== undefined && hasResult) {
        throw new ProtocolError("The 'error' and 'result' properties are mutually exclusive.")
      }
      return { type, invocationId, error, hasResult, result: obj.result, headers: optionalHeaders(obj) }
    }
    case MessageType.CancelInvocation:
      return { type, invocationId: requiredId(obj), headers: optionalHeaders(obj) }
    case MessageType.Ping:
      return PING
    case MessageType.Close: {
      const allowReconnect = obj.allowReconnect
      if (allowReconnect !== undefined && typeof allowReconnect !== 'boolean') {
        throw new ProtocolError("Expected 'allowReconnect' to be of type Boolean.")
      }
      return { type, error: optionalString(obj, 'error'), allowReconnect }
    }
    case MessageType.Ack:
    case MessageType.Sequence: {
      const sequenceId = obj.sequenceId
      if (typeof sequenceId !== 'number') throw new ProtocolError("Missing required property 'sequenceId'.")
      return { type, sequenceId }
    }
    default:
      // Unknown message types are ignored for forward compatibility (ASP.NET does the same).
      return undefined
  }
}

function requiredId (obj: Record<string, unknown>): string {
  const id = obj.invocationId
  if (typeof id !== 'string') throw new ProtocolError("Missing required property 'invocationId'.")
  return id
}

function optionalString (obj: Record<string, unknown>, key: string): string | undefined {
  const value = obj[key]
  if (value === undefined || value === null) return undefined
  if (typeof value !== 'string') throw new ProtocolError(`Expected '${key}' to be of type String.`)
  return value
}

function optionalStringArray (obj: Record<string, unknown>, key: string): string[] | undefined {
  const value = obj[key]
  if (value === undefined || value === null) return undefined
  if (!Array.isArray(value) || !value.every((v) => typeof v === 'string')) {
    throw new ProtocolError(`Expected '${key}' to be an array of strings.`)
  }
  return value as string[]
}

function optionalHeaders (obj: Record<string, unknown>): Headers | undefined {
  const value = obj.headers
  if (value === undefined || value === null) return undefined
  if (typeof value !== 'object' || Array.isArray(value)) {
    throw new ProtocolError("Expected 'headers' to be an object.")
  }
  return value as Headers
}

// ---------------------------------------------------------------- writing

/**
 * Serializes a value as SignalR servers do: `Uint8Array` as base64, `Date` as
 * ISO 8601 (its own toJSON), a safe BigInt as a number. The replacer costs on
 * every property, so it is only used when the value holds bytes or BigInts.
 * Throws `SerializationError` for a value no protocol can carry (see values.ts).
 */
export function stringifyValue (value: unknown): string {
  if (value === undefined) return 'null'
  return stringifyChecked(value, inspectOutgoing(value))
}

function stringifyArgs (args: readonly unknown[]): string {
  return stringifyChecked(args, inspectOutgoingList(args))
}

function stringifyChecked (value: unknown, flags: number): string {
  try {
    return flags === 0 ? JSON.stringify(value) : JSON.stringify(value, convertForJson)
  } catch (err) {
    // A throwing toJSON or getter: the send fails, never the process.
    throw new SerializationError(`The value could not be written as JSON: ${(err as Error).message}`)
  }
}

function convertForJson (this: Record<string, unknown>, key: string, value: unknown): unknown {
  // `this[key]` is the value before toJSON ran, so a Buffer is still a Buffer here.
  const raw = this[key]
  if (raw instanceof Uint8Array) {
    return Buffer.from(raw.buffer, raw.byteOffset, raw.byteLength).toString('base64')
  }
  if (typeof value === 'bigint') return Number(value)
  return value
}

function headersPart (headers: Headers | undefined): string {
  if (headers === undefined) return ''
  // Any key at all? (without allocating Object.keys on the hot path)
  // eslint-disable-next-line no-unreachable-loop
  for (const _ in headers) return ',"headers":' + stringifyValue(headers)
  return ''
}

export function stringifyMessage (m: HubMessage): string {
  switch (m.type) {
    case MessageType.Invocation:
    case MessageType.StreamInvocation:
      return '{"type":' + m.type +
        (m.invocationId !== undefined ? ',"invocationId":' + JSON.stringify(m.invocationId) : '') +
        ',"target":' + JSON.stringify(m.target) +
        ',"arguments":' + stringifyArgs(m.arguments) +
        (m.streamIds !== undefined && m.streamIds.length > 0 ? ',"streamIds":' + JSON.stringify(m.streamIds) : '') +
        headersPart(m.headers) + '}'
    case MessageType.StreamItem:
      return '{"type":2,"invocationId":' + JSON.stringify(m.invocationId) +
        ',"item":' + stringifyValue(m.item) + headersPart(m.headers) + '}'
    case MessageType.Completion:
      return '{"type":3,"invocationId":' + JSON.stringify(m.invocationId) +
        (m.error !== undefined
          ? ',"error":' + JSON.stringify(m.error)
          : m.hasResult ? ',"result":' + stringifyValue(m.result) : '') +
        headersPart(m.headers) + '}'
    case MessageType.CancelInvocation:
      return '{"type":5,"invocationId":' + JSON.stringify(m.invocationId) + headersPart(m.headers) + '}'
    case MessageType.Ping:
      return '{"type":6}'
    case MessageType.Close:
      return '{"type":7' +
        (m.error !== undefined ? ',"error":' + JSON.stringify(m.error) : '') +
        (m.allowReconnect === true ? ',"allowReconnect":true' : '') + '}'
    case MessageType.Ack:
    case MessageType.Sequence:
      return '{"type":' + m.type + ',"sequenceId":' + m.sequenceId + '}'
  }
}
