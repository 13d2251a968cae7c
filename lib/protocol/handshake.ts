import { isUtf8 } from 'node:buffer'
import type { HubProtocol, TransferFormat } from './hub-protocol.js'
import { safeJsonParse } from './json.js'
import { PendingBytes, type PendingMemory } from './pending-bytes.js'
import { ProtocolError } from './protocol-error.js'
import { RECORD_SEPARATOR, RECORD_SEPARATOR_CHAR } from './text-framing.js'

/** `{}` + RS: the only successful handshake answer the client accepts. */
export const HANDSHAKE_OK = Buffer.from('{}' + RECORD_SEPARATOR_CHAR)

/** The typed-array builtin: Buffer#indexOf's argument handling costs more than the search of a short handshake. */
const indexOfByte = Uint8Array.prototype.indexOf

export const HANDSHAKE_CANCELED = 'Handshake was canceled.'
export const HANDSHAKE_UNEXPECTED = 'An unexpected error occurred during connection handshake.'

export function handshakeError (text: string): Buffer {
  return Buffer.from(JSON.stringify({ error: text }) + RECORD_SEPARATOR_CHAR)
}

export type HandshakeScan =
  | { done: false }
  | { done: true, request: string, rest: Buffer }

/**
 * Collects the handshake record (always JSON, also for MessagePack) across
 * chunks. Bytes after its separator already belong to the hub protocol and
 * are returned as `rest`. The unfinished record is kept in one growable buffer
 * and each chunk is searched on its own, so a handshake trickled one byte per
 * frame costs linear work, and never more than the size limit in memory.
 */
export class HandshakeReader {
  private readonly pending: PendingBytes
  private readonly maxSize: number

  constructor (maxSize: number | null) {
    this.maxSize = maxSize ?? Number.POSITIVE_INFINITY
    this.pending = new PendingBytes(this.maxSize)
  }

  /**
   * Throws a `ProtocolError` whose message is the handshake error to answer:
   * HANDSHAKE_CANCELED once the record passes the limit, HANDSHAKE_UNEXPECTED
   * when it is not UTF-8 (ASP.NET's JSON reader fails on it).
   */
  read (chunk: Buffer): HandshakeScan {
    const pending = this.pending
    const end = indexOfByte.call(chunk, RECORD_SEPARATOR)
    if (end === -1) {
      if (pending.length + chunk.length > this.maxSize) this.refuse()
      pending.append(chunk)
      return { done: false }
    }
    // The separator counts toward the limit, as in ASP.NET.
    if (pending.length + end >= this.maxSize) this.refuse()
    let record = chunk.subarray(0, end)
    if (pending.length > 0) {
      pending.append(record)
      record = pending.bytes()
      pending.reset()
    }
    if (!isUtf8(record)) throw new ProtocolError(HANDSHAKE_UNEXPECTED)
    // toString() without arguments is UTF-8 without Buffer's encoding lookup.
    return { done: true, request: record.toString(), rest: chunk.subarray(end + 1) }
  }

  private refuse (): never {
    this.pending.reset()
    throw new ProtocolError(HANDSHAKE_CANCELED)
  }

  /** What the unfinished handshake costs (tests and diagnostics). */
  get memory (): PendingMemory {
    return this.pending.memory
  }
}

/** Finds the handshake record in one buffer holding everything received so far. */
export function scanHandshake (buffered: Buffer, maxSize: number | null): HandshakeScan {
  return new HandshakeReader(maxSize).read(buffered)
}

export type HandshakeResult =
  | { ok: true, protocol: HubProtocol, version: number }
  | { ok: false, error: string, detail?: string }

/**
 * Checks a handshake request against the protocols enabled for the hub and the
 * transport's transfer formats. Error texts are ASP.NET's, which the official
 * client shows as `Server returned handshake error: <text>`.
 */
export function negotiateHandshake (
  requestText: string,
  protocols: ReadonlyMap<string, HubProtocol>,
  transportFormats: readonly TransferFormat[]
): HandshakeResult {
  let request: unknown
  try {
    request = safeJsonParse(requestText)
  } catch (err) {
    return { ok: false, error: HANDSHAKE_UNEXPECTED, detail: `InvalidDataException: ${(err as Error).message}` }
  }
  if (request === null || typeof request !== 'object' || Array.isArray(request)) {
    return { ok: false, error: HANDSHAKE_UNEXPECTED, detail: 'InvalidDataException: Unexpected JSON Token Type.' }
  }
  const { protocol: name, version } = request as { protocol?: unknown, version?: unknown }
  if (typeof name !== 'string') {
    return { ok: false, error: HANDSHAKE_UNEXPECTED, detail: "InvalidDataException: Missing required property 'protocol'." }
  }
  if (typeof version !== 'number' || !Number.isInteger(version)) {
    return { ok: false, error: HANDSHAKE_UNEXPECTED, detail: "InvalidDataException: Missing required property 'version'." }
  }
  const protocol = protocols.get(name.toLowerCase())
  if (protocol === undefined) return { ok: false, error: `The protocol '${name}' is not supported.` }
  if (version > protocol.version) {
    return { ok: false, error: `The server does not support version ${version} of the '${name}' protocol.` }
  }
  if (!transportFormats.includes(protocol.transferFormat)) {
    return {
      ok: false,
      error: `Cannot use the '${name}' protocol on the current transport. ` +
        `The transport does not support '${protocol.transferFormat}' transfer format.`
    }
  }
  return { ok: true, protocol, version }
}
