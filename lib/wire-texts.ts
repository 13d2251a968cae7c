/**
 * The texts SignalR clients see, in one place. Each is ASP.NET Core's own
 * (src/SignalR/server/Core: DefaultHubDispatcher, ErrorMessageHelper,
 * DefaultHubLifetimeManager, HubCallerClients), so an application that
 * matches on them behaves the same against either server; where the words
 * are ours, the comment says so.
 */
export const errorText = {
  methodNotFound: (target: string) =>
    `Failed to invoke '${target}' due to an error on the server. HubException: Method does not exist.`,
  failedToInvoke: (target: string) => `Failed to invoke '${target}' due to an error on the server.`,
  unexpected: (target: string) => `An unexpected error occurred invoking '${target}' on the server.`,
  streamingWithInvoke: (target: string) =>
    `The client attempted to invoke the streaming '${target}' method with a non-streaming invocation.`,
  nonStreamingWithStream: (target: string) =>
    `The client attempted to invoke the non-streaming '${target}' method with a streaming invocation.`,
  streamCount: (sent: number, expected: number) => `Client sent ${sent} stream(s), Hub method expects ${expected}.`,
  argumentCount: (sent: number, expected: number) => `Invocation provides ${sent} argument(s) but target expects ${expected}.`,
  /** ASP.NET's prefix; the reason after it (zod's, or the depth limit) is ours. */
  binding: (position: number, reason: string) => `Error binding arguments. Argument ${position}: ${reason}`,
  streamFailed: 'An error occurred on the server while streaming results.',
  idInUse: (id: string) => `Invocation ID '${id}' is already in use.`,
  unauthorized: (target: string) => `Failed to invoke '${target}' because user is unauthorized`,
  connectionClosedWithError: 'Connection closed with an error.',
  /** Ours: the hub method awaiting a client result gets it when the value is too deep. */
  clientResultInvalid: (reason: string) => `The client's result is invalid: ${reason}`,
  /** Ours: an upload-stream item that fails its schema or the depth limit. */
  streamItemInvalid: (reason: string) => `Stream item is invalid: ${reason}`
} as const

/**
 * The messages of the coded errors a hub method may catch or pass on to its
 * caller (see errors.ts), as `%s` templates for @fastify/error.
 */
export const errorTemplate = {
  connectionNotFound: "Connection '%s' does not exist.",
  connectionDisconnected: "Connection '%s' disconnected.",
  /** Ours: ASP.NET ends a client result with a cancellation token rather than a timeout. */
  clientResultTimeout: "Timed out after %s ms waiting for the client's result of '%s'.",
  /** ASP.NET's, with our hook's name for OnConnectedAsync. */
  clientResultInOnConnected: 'Client results inside onConnected are not allowed.'
} as const
