import { MessagePackHubProtocol } from '@microsoft/signalr-protocol-msgpack'
import type { Test } from 'tap'
import { signalR } from './clients.js'

export type TransportCell = 'WebSockets' | 'ServerSentEvents' | 'LongPolling'
export type ProtocolCell = 'json' | 'messagepack'

export interface Cell {
  transport: TransportCell
  protocol: ProtocolCell
  name: string
}

/** Every combination the official client can pick (MessagePack needs binary, so never SSE). */
export const MATRIX: readonly Cell[] = (['WebSockets', 'ServerSentEvents', 'LongPolling'] as const).flatMap((transport) =>
  (['json', 'messagepack'] as const)
    .filter((protocol) => !(transport === 'ServerSentEvents' && protocol === 'messagepack'))
    .map((protocol) => ({ transport, protocol, name: `${transport}/${protocol}` })))

export interface MatrixClientOptions {
  accessToken?: string
  headers?: Record<string, string>
  statefulReconnect?: boolean
  automaticReconnect?: number[]
}

/** Builds an official client forced onto one transport and protocol (not started). */
export function buildCellClient (url: string, cell: Cell, options: MatrixClientOptions = {}): signalR.HubConnection {
  let builder = new signalR.HubConnectionBuilder()
    .withUrl(url, {
      transport: signalR.HttpTransportType[cell.transport],
      ...(options.accessToken !== undefined ? { accessTokenFactory: () => options.accessToken! } : {}),
      ...(options.headers !== undefined ? { headers: options.headers } : {})
    })
    .configureLogging(signalR.LogLevel.None)
  if (cell.protocol === 'messagepack') builder = builder.withHubProtocol(new MessagePackHubProtocol())
  if (options.statefulReconnect === true) builder = builder.withStatefulReconnect()
  if (options.automaticReconnect !== undefined) builder = builder.withAutomaticReconnect(options.automaticReconnect)
  return builder.build()
}

/** Builds, starts and (in teardown) stops a client for one matrix cell. */
export async function connectCell (t: Test, url: string, cell: Cell, options: MatrixClientOptions = {}): Promise<signalR.HubConnection> {
  const connection = buildCellClient(url, cell, options)
  t.teardown(() => connection.stop())
  await connection.start()
  return connection
}
