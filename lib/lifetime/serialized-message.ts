import type { HubProtocol } from '../protocol/hub-protocol.js'
import type { HubMessage } from '../protocol/messages.js'

/**
 * An outgoing message with its encoding cached per protocol, so a broadcast is
 * serialized once per protocol however many connections receive it (the idea
 * of ASP.NET's SerializedHubMessage). Two slots cover the two protocols.
 */
export class SerializedMessage {
  readonly message: HubMessage
  private json: Buffer | null = null
  private binary: Buffer | null = null

  constructor (message: HubMessage) {
    this.message = message
  }

  encode (protocol: HubProtocol): Buffer {
    if (protocol.transferFormat === 'Text') {
      return this.json ??= protocol.encode(this.message)
    }
    return this.binary ??= protocol.encode(this.message)
  }
}
