import type { HubMessage } from './messages.js'

/** `Text` protocols may travel as WebSocket text frames and SSE events. */
export type TransferFormat = 'Text' | 'Binary'

/**
 * A framing's per-connection state: cuts a byte stream into records. A record
 * may span chunks and a chunk may hold several records, so the splitter keeps
 * the unfinished tail. It refuses (throws `ProtocolError`) a record larger than
 * the limit it was created with as soon as it knows the size, never after
 * buffering it whole.
 */
export interface RecordSplitter<R> {
  /** Appends every whole record of `chunk` (without its framing) to `out`. */
  split (chunk: Buffer, out: R[]): void
}

/** How records are delimited on the wire: one splitter per connection. */
export interface RecordFraming<R> {
  /** `maxRecordSize` is the hub's `maximumReceiveMessageSize` (`null`: unlimited). */
  createSplitter (maxRecordSize: number | null): RecordSplitter<R>
}

/**
 * A hub protocol (ASP.NET's IHubProtocol): framing plus encoding of SignalR hub
 * messages. The built-in `json` and `messagepack` protocols are two of these;
 * pass your own in the `protocols` option next to their names.
 *
 * `R` is what the framing hands to `parse`: a string per record for
 * `recordSeparatorFraming`, a Buffer per message for `lengthPrefixFraming`,
 * or whatever your own framing yields.
 *
 * @example
 * const lines = defineHubProtocol({
 *   name: 'lines', version: 1, transferFormat: 'text', framing: newlineFraming,
 *   parse: (line) => decode(line),
 *   write: (message) => Buffer.from(encode(message) + '\n')
 * })
 * await app.register(signalr, { protocols: ['json', 'messagepack', lines] })
 */
export interface HubProtocolDefinition<R = string | Buffer> {
  /** What the client's handshake asks for (`{"protocol":"<name>"}`); matched case-insensitively. */
  readonly name: string
  /** Highest version understood: the handshake may ask for any version up to it. */
  readonly version: number
  /** `text` protocols work on every transport; `binary` ones not on Server-Sent Events. */
  readonly transferFormat: 'text' | 'binary'
  /** Cuts inbound bytes into records. */
  readonly framing: RecordFraming<R>
  /**
   * One record (without its framing) as a hub message; `undefined` skips it
   * (a message type this protocol does not know, as ASP.NET does). Throw
   * `ProtocolError` for malformed input: the connection closes with an error.
   */
  parse (record: R): HubMessage | undefined
  /** One message with its framing. Called once per protocol for a broadcast, whatever the receiver count. */
  write (message: HubMessage): Buffer
  /**
   * Optional, text protocols: the same framed record as a string, which a
   * transport can put in its own frame without an intermediate buffer.
   */
  writeText? (message: HubMessage): string
  /**
   * Optional fast path: the Completion of an invocation whose method returned
   * `result`, framed, written straight to bytes without a message object in
   * between. Must give the same bytes as `write` of that Completion, and throw
   * where `write` would.
   */
  writeResult? (invocationId: string, result: unknown): Buffer
}

/** Turns one connection's inbound bytes into messages. Stateful: keeps partial records. */
export interface MessageReader {
  /**
   * Appends every whole message found in `chunk` to `out`; bytes of an
   * unfinished record are kept for the next call. Messages of unknown type are
   * skipped, as ASP.NET does. Throws `ProtocolError` on malformed or oversized input.
   */
  read (chunk: Buffer, out: HubMessage[]): void
}

/**
 * A registered protocol as connections, transports and message caches use it
 * (compiled once from its definition by registry.ts). `slot` is its own index
 * in every per-protocol cache.
 */
export interface HubProtocol {
  readonly name: string
  readonly version: number
  readonly transferFormat: TransferFormat
  /** Unique per registered definition, dense from 0: the key of per-protocol caches. */
  readonly slot: number
  readonly definition: HubProtocolDefinition<unknown>
  createReader (maxMessageSize: number | null): MessageReader
  /** One message with its framing. */
  encode (message: HubMessage): Buffer
  /** Present when the definition has `writeText`. */
  readonly encodeText: ((message: HubMessage) => string) | undefined
  /** Present when the definition has `writeResult`. */
  readonly encodeResult: ((invocationId: string, result: unknown) => Buffer) | undefined
}
