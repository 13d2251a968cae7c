import type { HubProtocol, TransferFormat } from '../protocol/hub-protocol.js'
import type { SerializedMessage } from '../lifetime/serialized-message.js'

/** What a transport reports to the connection it carries. */
export interface TransportOwner {
  /** Bytes arrived from the client (may hold several records, or part of one). */
  onTransportData (data: Buffer): void
  /** The transport ended; `error` is set when it did not end cleanly. */
  onTransportClose (error: Error | undefined): void
  /** The outgoing buffer emptied after `waitForDrain`. */
  onTransportDrain (): void
  /** Bytes received but not yet taken (paused HTTP transports stop taking POSTs past a limit). */
  readonly bufferedInboundBytes: number
}

/**
 * Moves bytes between one client and its connection. Transports know nothing
 * of hub messages: they get whole records to send and hand over raw bytes.
 */
export interface Transport {
  /** Its registry entry's kind (lib/transports/registry.ts). */
  readonly kind: string
  readonly transferFormats: readonly TransferFormat[]
  /** Keep-alive pings travel on this transport (long polling has inherent keep-alive). */
  readonly needsKeepAlive: boolean
  /**
   * The connection stays findable by its token for a while after it closed, so
   * the client's last request is answered properly (long polling's final 204).
   */
  readonly lingersAfterClose: boolean
  attach (owner: TransportOwner): void
  /** Selects text or binary frames once the handshake has picked the protocol. */
  setBinary (binary: boolean): void
  /** Writes whole records. Never throws; a failed write closes the transport. */
  send (data: Buffer): void
  /**
   * Optional, for a connection's first record (the handshake answer): like
   * `send`, but it leaves at once without opening a turn that later records
   * are collected in (WebSockets: no end-of-turn callback to schedule).
   */
  sendNow? (data: Buffer): void
  /**
   * Optional: writes a message shared by many receivers, reusing framing
   * cached on it (WebSockets write one pre-built frame). `message.encode(protocol)`
   * is what `send` would get; asked for only when the cached frame cannot serve.
   */
  sendShared? (message: SerializedMessage, protocol: HubProtocol): void
  /** Optional: writes a text record given as a string (text protocols), saving a copy. */
  sendText? (text: string): void
  /** Bytes queued but not yet written to the network. */
  readonly bufferedAmount: number
  /** Calls `owner.onTransportDrain()` once the queued bytes are written. */
  waitForDrain (): void
  /** Stops and resumes delivering inbound data (backpressure on the client). */
  pause (): void
  resume (): void
  /** Ends the transport gracefully, after what was queued is sent. */
  close (): void
  /** Resolves once the underlying socket or response is really closed (for shutdown). */
  whenClosed (): Promise<void>
  /** Heartbeat for transports with timers of their own (long polling). */
  tick? (now: number, pollTimeout: number, disconnectTimeout: number): void
}
