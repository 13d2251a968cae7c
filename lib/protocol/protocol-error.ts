import { ProtocolError } from '../errors.js'

// Declared with the other coded errors; re-exported so the codecs keep one import.
export { ProtocolError }

export function messageTooLarge (limit: number): ProtocolError {
  return new ProtocolError(
    `The maximum message size of ${limit}B was exceeded. ` +
    'The message size can be configured with the maximumReceiveMessageSize option.'
  )
}
