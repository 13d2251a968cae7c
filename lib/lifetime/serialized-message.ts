import type { HubProtocol } from '../protocol/hub-protocol.js'
import { MessageType, type HubMessage } from '../protocol/messages.js'

/**
 * An outgoing message with its encoding cached per protocol, so a broadcast is
 * serialized once per protocol however many connections receive it (the idea
 * of ASP.NET's SerializedHubMessage). Two slots cover the two protocols.
 */
export class SerializedMessage {
  /** Null for a message that arrived already encoded (from the backplane). */
  readonly message: HubMessage | null
  /** Counts for stateful reconnect (everything but pings; backplane messages are invocations). */
  readonly trackable: boolean
  private json: Buffer | null = null
  private binary: Buffer | null = null
  private jsonFrame: Buffer | null = null
  private binaryFrame: Buffer | null = null

  constructor (message: HubMessage | null) {
    this.message = message
    this.trackable = message === null || message.type <= MessageType.CancelInvocation
  }

  /** A message another server encoded for every protocol. */
  static fromEncoded (json: Buffer, binary: Buffer): SerializedMessage {
    const serialized = new SerializedMessage(null)
    serialized.json = json
    serialized.binary = binary
    return serialized
  }

  /**
   * The transport's framing of this message (a WebSocket frame), built once
   * for all receivers of the protocol. `build` must be a module-level function.
   */
  framed (protocol: HubProtocol, build: (payload: Buffer, binary: boolean) => Buffer): Buffer {
    if (protocol.transferFormat === 'Text') {
      return this.jsonFrame ??= build(this.encode(protocol), false)
    }
    return this.binaryFrame ??= build(this.encode(protocol), true)
  }

  encode (protocol: HubProtocol): Buffer {
    if (protocol.transferFormat === 'Text') {
      return this.json ??= protocol.encode(this.message!)
    }
    return this.binary ??= protocol.encode(this.message!)
  }
}
