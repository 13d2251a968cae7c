import type { HubMessage } from './messages.js'

/** `Text` protocols may travel as WebSocket text frames and SSE events. */
export type TransferFormat = 'Text' | 'Binary'

/** Turns one connection's inbound bytes into messages. Stateful: keeps partial records. */
export interface MessageReader {
  /**
   * Appends every whole message found in `chunk` to `out`; bytes of an
   * unfinished record are kept for the next call. Messages of unknown type are
   * skipped, as ASP.NET does. Throws `ProtocolError` on malformed or oversized input.
   */
  read (chunk: Buffer, out: HubMessage[]): void
}

/** A SignalR hub protocol: `json` or `messagepack`. Pure: no I/O. */
export interface HubProtocol {
  readonly name: string
  /** Highest protocol version understood (the handshake may ask for any version up to it). */
  readonly version: number
  readonly transferFormat: TransferFormat
  createReader (maxMessageSize: number | null): MessageReader
  /** One message with its framing (record separator or length prefix). */
  encode (message: HubMessage): Buffer
  /**
   * Text protocols only: the same record as a string, so a transport can
   * write it into its own frame without an intermediate buffer.
   */
  encodeText? (message: HubMessage): string
  /**
   * Optional: the Completion of an invocation that returned `result`, framed,
   * written straight to bytes without a message object in between. The same
   * bytes as `encode` of that Completion; throws as `encode` would.
   */
  encodeResult? (invocationId: string, result: unknown): Buffer
}
