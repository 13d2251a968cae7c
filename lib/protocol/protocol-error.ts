/**
 * A violation of the wire protocol by the peer. The connection that produced it
 * is closed with `Connection closed with an error.`; the message here is the
 * detail shown only with `enableDetailedErrors`.
 */
export class ProtocolError extends Error {
  override name = 'InvalidDataException'
}

export function messageTooLarge (limit: number): ProtocolError {
  return new ProtocolError(
    `The maximum message size of ${limit}B was exceeded. ` +
    'The message size can be configured with the maximumReceiveMessageSize option.'
  )
}
