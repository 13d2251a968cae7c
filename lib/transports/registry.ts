import type { Duplex } from 'node:stream'
import type { FastifyBaseLogger, FastifyReply, FastifyRequest } from 'fastify'
import type { WebSocket } from 'ws'
import type { TransferFormat } from '../protocol/hub-protocol.js'
import type { HttpTransportBase } from './http-inbound.js'
import { hasInjectedClient, InMemoryTransport, takeInjectedClient } from './in-memory.js'
import { LongPollingTransport, NO_CACHE } from './long-polling.js'
import { ServerSentEventsTransport } from './server-sent-events.js'
import type { TransportKind, TransportName } from './names.js'
import type { Transport } from './transport.js'
import { WebSocketTransport } from './websockets.js'

/** What opening a GET transport may use: the plugin's clock (long polling's idle timer). */
export interface OpenContext {
  readonly clock: { readonly now: number }
}

/** A transport the connection endpoint opens with a GET (everything but the WebSocket upgrade). */
export interface GetOpening {
  /** Whether this GET is for this transport; the entries are asked in registry order. */
  accepts (request: FastifyRequest): boolean
  /**
   * The transport for a GET that opens a negotiated connection, and how the
   * GET is answered once the connection exists (`undefined`: the transport
   * owns the reply, as SSE's stream does). `null`: the request cannot open one.
   */
  open (request: FastifyRequest, reply: FastifyReply, context: OpenContext): { transport: Transport, answer?: (reply: FastifyReply) => FastifyReply } | null
  /** A later GET on a live connection of this transport (long polling's polls). Absent: 409, one stream per connection. */
  next? (transport: Transport, reply: FastifyReply, now: number): FastifyReply
}

/**
 * Everything the routes, negotiate, options, telemetry and types need to
 * know about one transport. Adding a transport: its file in lib/transports/
 * plus one entry in `TRANSPORTS` below.
 */
export interface TransportEntry {
  /** The `transports` option's name for it. */
  readonly name: string
  /** Its wire name: negotiate's `transport`, `hub.transport`, logs. */
  readonly kind: string
  readonly transferFormats: readonly TransferFormat[]
  /** OpenTelemetry `signalr.transport` value (ASP.NET Core's). */
  readonly telemetry: string
  /**
   * Offered to clients in negotiate and accepted by the `transports` option.
   * `false` for in-process transports, which no network request can open.
   */
  readonly network: boolean
  /** Carries stateful reconnect: a dropped transport may be replaced under the same connection. */
  readonly canReattach: boolean
  /**
   * How it opens: a WebSocket upgrade on the connection endpoint (`raw`: the
   * network socket it was completed on; `log`: where socket errors go, null
   * when @fastify/websocket reports them)...
   */
  readonly upgrade?: (socket: WebSocket, raw: Duplex | null, log: FastifyBaseLogger | null) => Transport
  /** ...or a GET. */
  readonly get?: GetOpening
  /** How it receives: client-to-server bytes as POST bodies (absent: on its own channel). */
  readonly posts?: (transport: Transport) => HttpTransportBase
  /** How the client terminates it: DELETE on the endpoint (absent: by closing its channel). */
  readonly terminate?: (transport: Transport) => void
}

/** In ASP.NET's advertising order, which is also the order clients try them in. */
export const TRANSPORTS = [
  {
    name: 'webSockets',
    kind: 'WebSockets',
    transferFormats: ['Text', 'Binary'],
    telemetry: 'web_sockets',
    network: true,
    canReattach: true,
    upgrade: (socket: WebSocket, raw: Duplex | null, log: FastifyBaseLogger | null) => new WebSocketTransport(socket, raw, log)
  },
  {
    name: 'serverSentEvents',
    kind: 'ServerSentEvents',
    transferFormats: ['Text'],
    telemetry: 'server_sent_events',
    network: true,
    canReattach: false,
    get: {
      // ASP.NET's rule: an event-stream Accept header means SSE.
      accepts: (request: FastifyRequest) => (request.headers.accept ?? '').includes('text/event-stream'),
      open: (_request: FastifyRequest, reply: FastifyReply) => ({ transport: new ServerSentEventsTransport(reply) })
    },
    posts: (transport: Transport) => transport as ServerSentEventsTransport
  },
  {
    name: 'longPolling',
    kind: 'LongPolling',
    transferFormats: ['Text', 'Binary'],
    telemetry: 'long_polling',
    network: true,
    canReattach: false,
    get: {
      // Any other GET is a poll.
      accepts: () => true,
      open: (_request: FastifyRequest, _reply: FastifyReply, context: OpenContext) => ({
        transport: new LongPollingTransport(context.clock),
        // The first poll answers at once: the client's start() waits for it.
        answer: (reply: FastifyReply) => reply.code(200).headers(NO_CACHE).type('application/octet-stream').send(Buffer.alloc(0))
      }),
      next: (transport: Transport, reply: FastifyReply, now: number) => (transport as LongPollingTransport).handlePoll(reply, now)
    },
    posts: (transport: Transport) => transport as LongPollingTransport,
    terminate: (transport: Transport) => { (transport as LongPollingTransport).terminate() }
  },
  {
    name: 'inMemory',
    kind: 'InMemory',
    transferFormats: ['Text', 'Binary'],
    telemetry: 'in_memory',
    // app.signalr.inject only: the GET must carry a key that exists in this process.
    network: false,
    canReattach: false,
    get: {
      accepts: (request: FastifyRequest) => hasInjectedClient(request.headers),
      open (request: FastifyRequest) {
        const client = takeInjectedClient(request.headers)
        return client === undefined ? null : { transport: new InMemoryTransport(client), answer: (reply: FastifyReply) => reply.code(200).send('') }
      }
    }
  }
] as const satisfies readonly TransportEntry[]

type Entry = (typeof TRANSPORTS)[number]

type Same<A, B> = [A] extends [B] ? ([B] extends [A] ? true : false) : false
// The public unions in names.ts must list exactly the registry's transports.
const namesMatchRegistry: Same<TransportName, Extract<Entry, { network: true }>['name']> & Same<TransportKind, Entry['kind']> = true
void namesMatchRegistry

const BY_KIND: ReadonlyMap<string, TransportEntry> = new Map(TRANSPORTS.map((entry) => [entry.kind, entry]))

export const NETWORK_TRANSPORTS: readonly TransportEntry[] = TRANSPORTS.filter((entry) => entry.network)
export const NETWORK_TRANSPORT_NAMES = NETWORK_TRANSPORTS.map((entry) => entry.name) as [TransportName, ...TransportName[]]
/** The GET transports in the order they are asked; the in-process ones first, as their key is exact. */
export const GET_TRANSPORTS: ReadonlyArray<TransportEntry & { get: GetOpening }> = [
  ...TRANSPORTS.filter((entry) => !entry.network),
  ...TRANSPORTS.filter((entry) => entry.network)
].filter((entry): entry is Extract<Entry, { get: GetOpening }> => 'get' in entry)
/** The transport a WebSocket upgrade opens. */
export const UPGRADE_TRANSPORT = TRANSPORTS.find((entry): entry is Extract<Entry, { upgrade: unknown }> => 'upgrade' in entry)!

/** The entry a live transport was made from. */
export function transportEntry (kind: string): TransportEntry {
  return BY_KIND.get(kind)!
}

/** Negotiate's `availableTransports` item, exactly as the official clients expect it (case-sensitive). */
export function negotiateEntry (entry: TransportEntry): string {
  return JSON.stringify({ transport: entry.kind, transferFormats: entry.transferFormats })
}
