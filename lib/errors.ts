import { inspect } from 'node:util'
import createError from '@fastify/error'
import { errorTemplate, errorText } from './wire-texts.js'

export { errorText }

/** Options a coded error takes after its `%s` values, as `new Error(message, { cause })` does. */
interface Cause { cause?: unknown }

/**
 * A class per code, made by @fastify/error (as Fastify and mercurius make
 * theirs): `code`, a `%s` message, and an `instanceof` that holds across
 * copies of the package. `name` is set after construction, because
 * @fastify/error names every error `FastifyError` and ours show their
 * class (or, for ProtocolError, the .NET type the clients' details use).
 */
function coded<Code extends string, Args extends unknown[]> (code: Code, message: string, name: string, base?: ErrorConstructor) {
  const Created = createError<Code, Args>(code, message, 500, base)
  return class extends Created {
    constructor (...args: Args) {
      // @fastify/error formats every argument into the message, an absent trailing one too.
      while (args.length > 0 && args[args.length - 1] === undefined) args.pop()
      super(...args)
      this.name = name
    }
  }
}

/**
 * The base of every error the plugin raises itself (bad options, bad hubs,
 * failed client results and group changes): check `code` to tell them apart.
 */
export class SignalRError extends Error {
  readonly code: string
  constructor (code: string, message: string) {
    super(message)
    this.name = 'SignalRError'
    this.code = code
  }
}

const signalRBase = SignalRError as unknown as ErrorConstructor

function signalR<Code extends string, Args extends unknown[]> (code: Code, message: string) {
  return coded<Code, Args>(code, message, 'SignalRError', signalRBase)
}

/**
 * An error whose message is meant for the caller, like ASP.NET's HubException.
 * Throw it from a hub method (or an `onConnected` hook) and the client sees
 * the message; any other error is hidden unless `enableDetailedErrors` is on.
 *
 * @example
 * handler () { throw new HubError('Room is full') }
 */
export class HubError extends coded<'SIGNALR_ERR_HUB', [string, Cause?]>('SIGNALR_ERR_HUB', '%s', 'HubError') {
  constructor (message = '', options?: Cause) {
    super(message, options)
  }
}

/**
 * An outgoing value that cannot be written (too deep, cyclic, a BigInt that no
 * number can hold, or anything the serializer refused). It fails only the send
 * or invocation it belongs to. Its text names the shape of the data, never its
 * content, so the caller sees it even without `enableDetailedErrors`.
 */
export class SerializationError extends coded<'SIGNALR_ERR_SERIALIZATION', [string, Cause?]>(
  'SIGNALR_ERR_SERIALIZATION', '%s', 'SerializationError') {}

/**
 * A violation of the wire protocol by the peer. The connection that produced it
 * is closed with `Connection closed with an error.`; the message here is the
 * detail shown only with `enableDetailedErrors`, under the .NET type name the
 * official clients know.
 */
export class ProtocolError extends coded<'SIGNALR_ERR_PROTOCOL', [string]>('SIGNALR_ERR_PROTOCOL', '%s', 'InvalidDataException') {}

/**
 * Every code the plugin raises, one class each (fastify's `codes` table).
 * README's "Errors" section lists them; test/errors.test.ts keeps the two in step.
 */
export const codes = {
  /** A plugin, `mapHub`, `inject`, `addHook` or backplane option is wrong; the message names it and its value. */
  SIGNALR_ERR_INVALID_OPTION: signalR<'SIGNALR_ERR_INVALID_OPTION', [where: string, problem: string]>(
    'SIGNALR_ERR_INVALID_OPTION', 'fastify-signalr: %s: %s'),
  /** A hub definition (or `mapHub` path) is wrong. */
  SIGNALR_ERR_INVALID_HUB: signalR<'SIGNALR_ERR_INVALID_HUB', [where: string, problem: string]>(
    'SIGNALR_ERR_INVALID_HUB', '%s: %s'),
  SIGNALR_ERR_HUB_NOT_MAPPED: signalR<'SIGNALR_ERR_HUB_NOT_MAPPED', []>(
    'SIGNALR_ERR_HUB_NOT_MAPPED', 'fastify-signalr: hubContext(hub): this hub is not mapped; call app.mapHub(path, hub) first'),
  /** A selector or group call got an argument of the wrong type (its promise rejects). */
  SIGNALR_ERR_INVALID_ARGUMENT: signalR<'SIGNALR_ERR_INVALID_ARGUMENT', [name: string, expected: string, got: string]>(
    'SIGNALR_ERR_INVALID_ARGUMENT', '%s must be %s; got %s'),
  SIGNALR_ERR_CONNECTION_NOT_FOUND: signalR<'SIGNALR_ERR_CONNECTION_NOT_FOUND', [connectionId: string]>(
    'SIGNALR_ERR_CONNECTION_NOT_FOUND', errorTemplate.connectionNotFound),
  SIGNALR_ERR_CONNECTION_DISCONNECTED: signalR<'SIGNALR_ERR_CONNECTION_DISCONNECTED', [connectionId: string]>(
    'SIGNALR_ERR_CONNECTION_DISCONNECTED', errorTemplate.connectionDisconnected),
  SIGNALR_ERR_CLIENT_RESULT_TIMEOUT: signalR<'SIGNALR_ERR_CLIENT_RESULT_TIMEOUT', [ms: number, method: string]>(
    'SIGNALR_ERR_CLIENT_RESULT_TIMEOUT', errorTemplate.clientResultTimeout),
  SIGNALR_ERR_CLIENT_RESULT_IN_ON_CONNECTED: signalR<'SIGNALR_ERR_CLIENT_RESULT_IN_ON_CONNECTED', []>(
    'SIGNALR_ERR_CLIENT_RESULT_IN_ON_CONNECTED', errorTemplate.clientResultInOnConnected),
  /** The backplane did not confirm a group subscription, or the server owning a connection did not answer a group change. */
  SIGNALR_ERR_BACKPLANE_TIMEOUT: signalR<'SIGNALR_ERR_BACKPLANE_TIMEOUT', [what: string, ms: number]>(
    'SIGNALR_ERR_BACKPLANE_TIMEOUT', '%s within %s ms.'),
  SIGNALR_ERR_SHUTTING_DOWN: signalR<'SIGNALR_ERR_SHUTTING_DOWN', []>('SIGNALR_ERR_SHUTTING_DOWN', 'The server is shutting down.'),
  /** A failure on another server whose kind it did not say (an older version or another publisher). */
  SIGNALR_ERR_REMOTE: signalR<'SIGNALR_ERR_REMOTE', [message: string]>('SIGNALR_ERR_REMOTE', '%s'),
  SIGNALR_ERR_HUB: HubError,
  SIGNALR_ERR_SERIALIZATION: SerializationError,
  SIGNALR_ERR_PROTOCOL: ProtocolError
} as const

export type ErrorCode = keyof typeof codes

/** The .NET type name the official clients are used to seeing in details. */
function detailOf (err: unknown): string {
  if (err instanceof HubError) return `HubException: ${err.message}`
  if (err instanceof SerializationError) return `InvalidDataException: ${err.message}`
  if (err instanceof Error) return `${err.name}: ${err.message}`
  return `Error: ${String(err)}`
}

/**
 * The one mapping from a thrown value to the error text a client receives
 * (Completion, stream end, Close): ASP.NET's rule (ErrorMessageHelper). The
 * detail is appended when detailed errors are on, and always for a HubError
 * (ASP.NET's HubException) and our SerializationError; anything else shows
 * only `prefix`.
 */
export function withDetail (prefix: string, err: unknown, detailed: boolean): string {
  if (detailed || err instanceof HubError || err instanceof SerializationError) return `${prefix} ${detailOf(err)}`
  return prefix
}

/**
 * An error as it crosses the backplane: its message and its code, so the
 * server that asked rebuilds the same class and applies the same rule
 * (a remote HubError still reaches the caller; a remote timeout is still
 * hidden without detailed errors).
 */
export function toRemote (err: unknown): [message: string, code: string | null] {
  if (!(err instanceof Error)) return [String(err), null]
  const code = (err as { code?: unknown }).code
  return [err.message, typeof code === 'string' && Object.hasOwn(codes, code) ? code : null]
}

export function fromRemote (message: string, code: unknown): Error {
  const Class = typeof code === 'string' && Object.hasOwn(codes, code) ? codes[code as ErrorCode] : codes.SIGNALR_ERR_REMOTE
  const err = new (Class as new (message: string) => Error)(message)
  // Templates with several values cannot be re-filled from one text: the text is the original's.
  err.message = message
  return err
}

/** Shows what an option or argument was given, short enough for one error line. */
export function describeValue (value: unknown): string {
  const text = inspect(value, { depth: 0, breakLength: Infinity, maxArrayLength: 5, maxStringLength: 40 })
  return text.length > 60 ? `${text.slice(0, 59)}…` : text
}
