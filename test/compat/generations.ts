/**
 * The SignalR JavaScript client generations the compatibility test runs, as
 * installed (npm aliases next to @microsoft/signalr 10 under its own name).
 * Shared by the test and its child script; loads no client itself.
 */
export type TransportName = 'WebSockets' | 'ServerSentEvents' | 'LongPolling'
export type ProtocolName = 'json' | 'messagepack'

export interface Generation {
  /** The version line, as the test names it. */
  name: string
  /** The package (or npm alias) of the client. */
  client: string
  /** The package name its protocol packages require it by. */
  peerName: '@aspnet/signalr' | '@microsoft/signalr'
  /** The MessagePack protocol package of the same generation, when there is one. */
  messagepack?: string
  /** A browser-only client: needs WebSocket, XMLHttpRequest and EventSource as globals in Node. */
  browserGlobals?: true
  /**
   * 5.0 calls `fetch.bind(self)` whenever a global fetch exists (Node 18 and
   * later), so in Node it needs `self`, as in a browser: the usual workaround.
   */
  selfGlobal?: true
}

export const GENERATIONS: readonly Generation[] = [
  { name: '1.0', client: 'signalr-1.0', peerName: '@aspnet/signalr', messagepack: 'signalr-msgpack-1.0', browserGlobals: true },
  { name: '1.1', client: 'signalr-1.1', peerName: '@aspnet/signalr', messagepack: 'signalr-msgpack-1.1' },
  { name: '3.1', client: 'signalr-3', peerName: '@microsoft/signalr', messagepack: 'signalr-msgpack-3' },
  { name: '5', client: 'signalr-5', peerName: '@microsoft/signalr', messagepack: 'signalr-msgpack-5', selfGlobal: true },
  { name: '6', client: 'signalr-6', peerName: '@microsoft/signalr', messagepack: 'signalr-msgpack-6' },
  { name: '7', client: 'signalr-7', peerName: '@microsoft/signalr', messagepack: 'signalr-msgpack-7' },
  { name: '8', client: 'signalr-8', peerName: '@microsoft/signalr', messagepack: 'signalr-msgpack-8' },
  { name: '9', client: 'signalr-9', peerName: '@microsoft/signalr', messagepack: 'signalr-msgpack-9' },
  { name: '10', client: '@microsoft/signalr', peerName: '@microsoft/signalr', messagepack: '@microsoft/signalr-protocol-msgpack' }
]

export interface Cell {
  transport: TransportName
  protocol: ProtocolName
}

/** Every transport with JSON; MessagePack where the generation has it (binary: never Server-Sent Events). */
export function cellsOf (generation: Generation): Cell[] {
  const transports: TransportName[] = ['WebSockets', 'ServerSentEvents', 'LongPolling']
  return transports.flatMap((transport) => {
    const cells: Cell[] = [{ transport, protocol: 'json' }]
    if (generation.messagepack !== undefined && transport !== 'ServerSentEvents') cells.push({ transport, protocol: 'messagepack' })
    return cells
  })
}

/** What a child reports for one cell: each step's outcome, as the client saw it. */
export interface CellReport extends Cell {
  /** The transport the server says the connection uses. */
  servedOver?: string
  /** Add(40, 2) */
  invoke?: unknown
  /** The arguments of the 'Echoed' message the server sends back after send('Echo', 'hello'). */
  message?: unknown[]
  /** The items of the stream Count(3). */
  stream?: unknown[]
  /** The error message of invoking Fail (a HubError on the server). */
  hubError?: string | null
  /** The error onclose reported after stop(): null when none. */
  closeError?: string | null
  /** The step that threw or timed out, and its error. */
  failed?: { step: string, message: string }
}

export interface GenerationReport {
  generation: string
  /** The version read from the client package's package.json. */
  clientVersion: string
  /** Where the protocol package's require of its peer (`@microsoft/signalr`) resolved to. */
  messagepackPeer?: string
  cells: CellReport[]
}
