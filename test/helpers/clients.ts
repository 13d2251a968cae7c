import * as signalR from '@microsoft/signalr'
import type { Test } from 'tap'

export { signalR }

export interface ClientOptions {
  /** Skip negotiate and open the WebSocket directly. */
  skipNegotiation?: boolean
  accessToken?: string
  headers?: Record<string, string>
  serverTimeoutInMilliseconds?: number
  keepAliveIntervalInMilliseconds?: number
  /** Register handlers before start() so no early message is missed. */
  before?: (connection: signalR.HubConnection) => void
}

/** Builds an official @microsoft/signalr client for `url` over WebSockets + JSON (not started). */
export function buildClient (url: string, options: ClientOptions = {}): signalR.HubConnection {
  const connection = new signalR.HubConnectionBuilder()
    .withUrl(url, {
      transport: signalR.HttpTransportType.WebSockets,
      skipNegotiation: options.skipNegotiation ?? false,
      ...(options.accessToken !== undefined ? { accessTokenFactory: () => options.accessToken! } : {}),
      ...(options.headers !== undefined ? { headers: options.headers } : {})
    })
    .configureLogging(signalR.LogLevel.None)
    .build()
  if (options.serverTimeoutInMilliseconds !== undefined) connection.serverTimeoutInMilliseconds = options.serverTimeoutInMilliseconds
  if (options.keepAliveIntervalInMilliseconds !== undefined) connection.keepAliveIntervalInMilliseconds = options.keepAliveIntervalInMilliseconds
  options.before?.(connection)
  return connection
}

/** Builds, starts and (in teardown) stops an official client. */
export async function connect (t: Test, url: string, options: ClientOptions = {}): Promise<signalR.HubConnection> {
  const connection = buildClient(url, options)
  t.teardown(() => connection.stop())
  await connection.start()
  return connection
}

/** Resolves with the arguments of the next call of `method` on `connection`. */
export function nextMessage (connection: signalR.HubConnection, method: string): Promise<unknown[]> {
  return new Promise((resolve) => {
    const handler = (...args: unknown[]): void => {
      connection.off(method, handler)
      resolve(args)
    }
    connection.on(method, handler)
  })
}

/** Collects every call of `method` on `connection`. */
export function collect (connection: signalR.HubConnection, method: string): unknown[][] {
  const calls: unknown[][] = []
  connection.on(method, (...args: unknown[]) => { calls.push(args) })
  return calls
}

/** Resolves when the connection closes, with the error it reports. */
export function closed (connection: signalR.HubConnection): Promise<Error | undefined> {
  return new Promise((resolve) => { connection.onclose((error) => { resolve(error) }) })
}
