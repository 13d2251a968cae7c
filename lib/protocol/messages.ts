/**
 * SignalR hub messages as plain data. Codecs turn these into bytes and back;
 * nothing here knows about transports.
 * Spec: dotnet/aspnetcore src/SignalR/docs/specs/HubProtocol.md
 */

export const MessageType = {
  Invocation: 1,
  StreamItem: 2,
  Completion: 3,
  StreamInvocation: 4,
  CancelInvocation: 5,
  Ping: 6,
  Close: 7,
  Ack: 8,
  Sequence: 9
} as const

export type Headers = Record<string, string>

export interface InvocationMessage {
  type: typeof MessageType.Invocation
  /** Absent for fire-and-forget (`send`). */
  invocationId?: string
  target: string
  arguments: unknown[]
  streamIds?: string[]
  headers?: Headers
}

export interface StreamInvocationMessage {
  type: typeof MessageType.StreamInvocation
  invocationId: string
  target: string
  arguments: unknown[]
  streamIds?: string[]
  headers?: Headers
}

export interface StreamItemMessage {
  type: typeof MessageType.StreamItem
  invocationId: string
  item: unknown
  headers?: Headers
}

/**
 * A Completion carries `error`, or `result`, or neither (`hasResult` false and
 * no error: a stream end or a void upload completion).
 */
export interface CompletionMessage {
  type: typeof MessageType.Completion
  invocationId: string
  error?: string
  hasResult: boolean
  result?: unknown
  headers?: Headers
}

export interface CancelInvocationMessage {
  type: typeof MessageType.CancelInvocation
  invocationId: string
  headers?: Headers
}

export interface PingMessage {
  type: typeof MessageType.Ping
}

export interface CloseMessage {
  type: typeof MessageType.Close
  error?: string
  allowReconnect?: boolean
}

export interface AckMessage {
  type: typeof MessageType.Ack
  sequenceId: number
}

export interface SequenceMessage {
  type: typeof MessageType.Sequence
  sequenceId: number
}

export type HubMessage =
  | InvocationMessage
  | StreamInvocationMessage
  | StreamItemMessage
  | CompletionMessage
  | CancelInvocationMessage
  | PingMessage
  | CloseMessage
  | AckMessage
  | SequenceMessage

export const PING: PingMessage = Object.freeze({ type: MessageType.Ping })
