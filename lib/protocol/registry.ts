import { codes } from '../errors.js'
import type { HubProtocol, HubProtocolDefinition, MessageReader, RecordSplitter, TransferFormat } from './hub-protocol.js'
import type { HubMessage } from './messages.js'
import { readRecords } from './read-records.js'

/**
 * Why `value` is not a usable protocol definition, or null when it is. Checked
 * when a protocol is defined or registered, so a mistake fails at start-up
 * with the field it concerns rather than on the first connection.
 */
export function definitionError (value: unknown): string | null {
  if (value === null || typeof value !== 'object') return 'a protocol must be a name or an object { name, version, transferFormat, framing, parse, write }'
  const p = value as Record<string, unknown>
  if (typeof p.name !== 'string' || p.name === '') return 'a protocol object needs a name (a non-empty string)'
  const label = `protocol '${p.name}':`
  if (typeof p.version !== 'number' || !Number.isInteger(p.version) || p.version < 1) return `${label} version must be an integer of at least 1`
  if (p.transferFormat !== 'text' && p.transferFormat !== 'binary') return `${label} transferFormat must be 'text' or 'binary'`
  const framing = p.framing as { createSplitter?: unknown } | null | undefined
  if (framing === null || typeof framing !== 'object' || typeof framing.createSplitter !== 'function') {
    return `${label} framing must be an object with createSplitter(maxRecordSize)`
  }
  if (typeof p.parse !== 'function') return `${label} parse(record) must be a function`
  if (typeof p.write !== 'function') return `${label} write(message) must be a function`
  if (p.writeText !== undefined && typeof p.writeText !== 'function') return `${label} writeText, when given, must be a function`
  if (p.writeResult !== undefined && typeof p.writeResult !== 'function') return `${label} writeResult, when given, must be a function`
  return null
}

/** Reads one connection's records with the definition's framing and parser. */
class FramedReader implements MessageReader {
  private readonly splitter: RecordSplitter<unknown>
  private readonly definition: HubProtocolDefinition<unknown>
  private readonly records: unknown[] = []

  constructor (definition: HubProtocolDefinition<unknown>, maxMessageSize: number | null) {
    this.definition = definition
    this.splitter = definition.framing.createSplitter(maxMessageSize)
  }

  read (chunk: Buffer, out: HubMessage[]): void {
    readRecords(this.splitter, chunk, this.records, this.definition, out)
  }
}

class RegisteredProtocol implements HubProtocol {
  readonly name: string
  readonly version: number
  readonly transferFormat: TransferFormat
  readonly slot: number
  readonly definition: HubProtocolDefinition<unknown>
  readonly encode: (message: HubMessage) => Buffer
  readonly encodeText: ((message: HubMessage) => string) | undefined
  readonly encodeResult: ((invocationId: string, result: unknown) => Buffer) | undefined

  constructor (definition: HubProtocolDefinition<unknown>, slot: number) {
    this.name = definition.name
    this.version = definition.version
    this.transferFormat = definition.transferFormat === 'binary' ? 'Binary' : 'Text'
    this.slot = slot
    this.definition = definition
    // Bound once per protocol, not per message: the definition's methods keep their `this`,
    // and a send costs no extra JavaScript frame (the benchmarks run the server jitless).
    this.encode = definition.write.bind(definition)
    this.encodeText = definition.writeText?.bind(definition)
    this.encodeResult = definition.writeResult?.bind(definition)
  }

  createReader (maxMessageSize: number | null): MessageReader {
    return new FramedReader(this.definition, maxMessageSize)
  }
}

const registered = new WeakMap<object, HubProtocol>()
let nextSlot = 0

/**
 * The registered form of a definition: the same object for the same
 * definition (several apps or hubs share its caches' slot). The built-in
 * protocols go through here too; nothing below treats them apart.
 */
export function registerProtocol<R> (definition: HubProtocolDefinition<R>): HubProtocol {
  let protocol = registered.get(definition)
  if (protocol !== undefined) return protocol
  const error = definitionError(definition)
  if (error !== null) throw new codes.SIGNALR_ERR_INVALID_OPTION('protocols', error)
  protocol = new RegisteredProtocol(definition as HubProtocolDefinition<unknown>, nextSlot++)
  registered.set(definition, protocol)
  return protocol
}

/**
 * Checks a definition's shape and returns it: a typed way to write one, and
 * its mistakes surface where it is written.
 *
 * @example
 * export const lines = defineHubProtocol({ name: 'lines', version: 1, transferFormat: 'text', framing, parse, write })
 */
export function defineHubProtocol<R> (definition: HubProtocolDefinition<R>): HubProtocolDefinition<R> {
  const error = definitionError(definition)
  if (error !== null) throw new codes.SIGNALR_ERR_INVALID_OPTION('defineHubProtocol', error)
  return definition
}
