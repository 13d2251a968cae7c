import {
  errorCodes, HubError, SerializationError, SignalRError, type ErrorCode
} from '../lib/index.js'
import type { Equal, Expect } from './helpers.js'

// Every code, once: a missing one fails as an absent property, an extra one as
// an excess property. test/errors.test.ts reads this list and checks that the
// table and README's "Errors" section hold the same codes.
export const everyCode: Record<ErrorCode, true> = {
  SIGNALR_ERR_INVALID_OPTION: true,
  SIGNALR_ERR_INVALID_HUB: true,
  SIGNALR_ERR_HUB_NOT_MAPPED: true,
  SIGNALR_ERR_INVALID_ARGUMENT: true,
  SIGNALR_ERR_CONNECTION_NOT_FOUND: true,
  SIGNALR_ERR_CONNECTION_DISCONNECTED: true,
  SIGNALR_ERR_CLIENT_RESULT_TIMEOUT: true,
  SIGNALR_ERR_CLIENT_RESULT_IN_ON_CONNECTED: true,
  SIGNALR_ERR_BACKPLANE_TIMEOUT: true,
  SIGNALR_ERR_SHUTTING_DOWN: true,
  SIGNALR_ERR_REMOTE: true,
  SIGNALR_ERR_HUB: true,
  SIGNALR_ERR_SERIALIZATION: true,
  SIGNALR_ERR_PROTOCOL: true
}

// Each class's instances carry their own code as a literal type.
type _hub = Expect<Equal<HubError['code'], 'SIGNALR_ERR_HUB'>>
type _serialization = Expect<Equal<SerializationError['code'], 'SIGNALR_ERR_SERIALIZATION'>>
type _timeout = Expect<Equal<InstanceType<typeof errorCodes.SIGNALR_ERR_CLIENT_RESULT_TIMEOUT>['code'], 'SIGNALR_ERR_CLIENT_RESULT_TIMEOUT'>>

// HubError keeps Error's constructor shape (message, then { cause }).
export const withCause = new HubError('Room is full', { cause: new Error('inner') })
export const plain: Error = new HubError('Room is full')
// @ts-expect-error a message is text
export const notText = new HubError(42)

export function codeOf (err: unknown): string | undefined {
  return err instanceof SignalRError ? err.code : undefined
}
