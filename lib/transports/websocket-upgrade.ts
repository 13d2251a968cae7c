import type { EventEmitter } from 'node:events'
import type { Duplex } from 'node:stream'
import type { FastifyBaseLogger, FastifyReply, FastifyRequest } from 'fastify'
import { WebSocketServer, type WebSocket } from 'ws'

/** ws's default, kept when messages may be of any size. */
const WS_DEFAULT_FRAGMENTS = 16 * 1024
/** The smallest pieces a well-behaved client cuts a message into (.NET clients send 4 KiB pipe segments). */
const CLIENT_FRAGMENT_SIZE = 4096
const NO_HEAD = Buffer.alloc(0)

/**
 * Bytes that came with the upgrade request after its headers: @fastify/websocket
 * keeps them on the raw request under a symbol of its own, where no public
 * API reaches. A client must wait for the 101 before it sends a frame (RFC 6455
 * §4.1), so they are normally empty, but a view of the whole request's read
 * buffer (about 350 bytes a connection, as long as `hub.request` lives). Taken
 * (and replaced by an empty buffer) when found; an empty head otherwise.
 */
function takeHead (raw: object): Buffer {
  const key = headKey ?? findHeadKey(raw)
  if (key === null) return NO_HEAD
  const head = (raw as Record<symbol, unknown>)[key]
  ;(raw as Record<symbol, unknown>)[key] = NO_HEAD
  return Buffer.isBuffer(head) && head.length > 0 ? Buffer.from(head) : NO_HEAD
}

/** The symbol, looked up on the first upgrade only (listing a request's symbols costs a little every time). */
let headKey: symbol | null = null

function findHeadKey (raw: object): symbol | null {
  headKey = Object.getOwnPropertySymbols(raw).find((symbol) => symbol.description === 'ws-head') ?? null
  return headKey
}

/**
 * How many fragments one WebSocket message may come in. ws keeps each
 * fragment as a Buffer (about 100 bytes of bookkeeping) until the message is
 * whole, so its default of 16 384 lets one-byte fragments cost a hundred times
 * their payload. Enough for a payload-sized message in 4 KiB pieces.
 */
export function fragmentLimit (maxPayload: number): number {
  return maxPayload === 0 ? WS_DEFAULT_FRAGMENTS : Math.max(64, Math.ceil(maxPayload / CLIENT_FRAGMENT_SIZE))
}

/** Largest WebSocket frame a hub's ws server accepts before our framing sees it (0 = unlimited). */
export function framePayloadLimit (maximumReceiveMessageSize: number | null): number {
  // A frame may carry several messages, so allow a few whole messages per frame.
  return maximumReceiveMessageSize === null ? 0 : Math.max(1024 * 1024, maximumReceiveMessageSize * 4)
}

/**
 * The options of a hub's own ws server. UTF-8 is checked by the text framing
 * instead (per record, for every transport), so a bad text frame ends in
 * SignalR's Close message rather than a dropped socket and an error log.
 * No compression: ws's sender then writes every frame at once, which the
 * direct-write path of WebSocketTransport relies on.
 */
export function hubServerOptions (maxPayload: number): ConstructorParameters<typeof WebSocketServer>[0] {
  return {
    noServer: true,
    clientTracking: false,
    perMessageDeflate: false,
    maxPayload,
    maxFragments: fragmentLimit(maxPayload),
    skipUTF8Validation: true
  } as ConstructorParameters<typeof WebSocketServer>[0]
}

/**
 * Logs a socket error the way a hostile client cannot exploit. ws reports a
 * client's protocol violation (too many fragments, too large, bad opcode) as
 * an error with a `WS_ERR_*` code and is already closing the socket with the
 * matching close code: one debug line. Anything else is logged and the socket
 * dropped, as @fastify/websocket does by default.
 */
export function logSocketError (log: FastifyBaseLogger, error: Error, socket: WebSocket): void {
  const code = (error as { code?: unknown }).code
  if (typeof code === 'string' && code.startsWith('WS_ERR_')) {
    log.debug({ code, reason: error.message }, 'websocket protocol error from the client')
    return
  }
  log.error(error)
  socket.terminate()
}

/** @fastify/websocket's errorHandler when the plugin registers it (see logSocketError). */
export function onWebSocketError (error: Error, socket: WebSocket, request: FastifyRequest): void {
  logSocketError(request.log, error, socket)
}

/**
 * Upgrades the WebSocket requests of one hub with a ws server of its own, so
 * the hub's payload limits never change the shared server that
 * @fastify/websocket gives the application's own WebSocket routes.
 *
 * @fastify/websocket still receives the server's 'upgrade' and routes the
 * request through Fastify (hooks, authentication); the hub route takes it in
 * its last hook, before @fastify/websocket's handler would upgrade it.
 */
export class HubUpgrader {
  private readonly wss: WebSocketServer
  /** The application's shared ws server: its 'connection' listeners still see hub sockets. */
  private readonly shared: EventEmitter | undefined

  constructor (maxPayload: number, shared: EventEmitter | undefined) {
    this.wss = new WebSocketServer(hubServerOptions(maxPayload))
    this.shared = shared
  }

  /**
   * The network socket of an upgrade request, or null when the request did
   * not come from an HTTP server (@fastify/websocket's injectWS): that one
   * is left to @fastify/websocket.
   */
  socketOf (request: FastifyRequest): Duplex | null {
    const socket = request.raw.socket as Duplex | null | undefined
    return socket === null || socket === undefined || typeof socket.write !== 'function' ? null : socket
  }

  /**
   * Takes the request from Fastify and completes the upgrade on `socket`;
   * `opened` gets the WebSocket. A handshake ws refuses is answered by ws.
   */
  upgrade (request: FastifyRequest, reply: FastifyReply, socket: Duplex, opened: (ws: WebSocket) => void): void {
    reply.hijack()
    // @fastify/websocket gave the request a ServerResponse bound to the socket;
    // nothing will be sent through it, and bound it would live (with the
    // Fastify reply its listeners hold) as long as the connection.
    const response = reply.raw as { socket?: unknown, detachSocket?: (socket: unknown) => void }
    if (response.socket === socket && typeof response.detachSocket === 'function') response.detachSocket(socket)
    const shared = this.shared
    this.wss.handleUpgrade(request.raw, socket, takeHead(request.raw), (ws) => {
      shared?.emit('connection', ws, request.raw)
      opened(ws)
    })
  }
}
