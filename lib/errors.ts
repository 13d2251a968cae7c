/**
 * An error whose message is meant for the caller, like ASP.NET's HubException.
 * Throw it from a hub method (or an `onConnected` hook) and the client sees
 * the message; any other error is hidden unless `enableDetailedErrors` is on.
 *
 * @example
 * handler () { throw new HubError('Room is full') }
 */
export class HubError extends Error {
  override name = 'HubError'
}

/**
 * An outgoing value that cannot be written (too deep, cyclic, a BigInt that no
 * number can hold, or anything the serializer refused). It fails only the send
 * or invocation it belongs to. Its text names the shape of the data, never its
 * content, so the caller sees it even without `enableDetailedErrors`.
 */
export class SerializationError extends Error {
  override name = 'SerializationError'
}

/** The .NET type name the official clients are used to seeing in details. */
function detailOf (err: unknown): string {
  if (err instanceof HubError) return `HubException: ${err.message}`
  if (err instanceof SerializationError) return `InvalidDataException: ${err.message}`
  if (err instanceof Error) return `${err.name}: ${err.message}`
  return `Error: ${String(err)}`
}

/**
 * ASP.NET's rule (ErrorMessageHelper): the detail is appended when detailed
 * errors are on, and always for a HubException (and for our SerializationError).
 */
export function withDetail (prefix: string, err: unknown, detailed: boolean): string {
  if (detailed || err instanceof HubError || err instanceof SerializationError) return `${prefix} ${detailOf(err)}`
  return prefix
}

export const errorText = {
  methodNotFound: (target: string) =>
    `Failed to invoke '${target}' due to an error on the server. HubException: Method does not exist.`,
  failedToInvoke: (target: string) => `Failed to invoke '${target}' due to an error on the server.`,
  unexpected: (target: string) => `An unexpected error occurred invoking '${target}' on the server.`,
  streamingWithInvoke: (target: string) =>
    `The client attempted to invoke the streaming '${target}' method with a non-streaming invocation.`,
  nonStreamingWithStream: (target: string) =>
    `The client attempted to invoke the non-streaming '${target}' method with a streaming invocation.`,
  streamFailed: 'An error occurred on the server while streaming results.',
  idInUse: (id: string) => `Invocation ID '${id}' is already in use.`,
  unauthorized: (target: string) => `Failed to invoke '${target}' because user is unauthorized`,
  connectionClosedWithError: 'Connection closed with an error.'
} as const

/** Internal codes for errors the plugin raises itself. */
export const ERR_OPTION = 'FST_SIGNALR_INVALID_OPTION'
export const ERR_HUB_DEFINITION = 'FST_SIGNALR_INVALID_HUB'
export const ERR_HUB_NOT_MAPPED = 'FST_SIGNALR_HUB_NOT_MAPPED'

export class SignalRError extends Error {
  readonly code: string
  constructor (code: string, message: string) {
    super(message)
    this.name = 'SignalRError'
    this.code = code
  }
}
