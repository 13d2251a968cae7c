import type { EventEmitter } from 'node:events'
import type { Duplex } from 'node:stream'
import type { FastifyBaseLogger, FastifyInstance, FastifyReply, FastifyRequest } from 'fastify'
import type { WebSocket } from 'ws'
import { HubConnection } from '../connection/connection.js'
import type { ConnectionSlot as Slot, ConnectionStore, PendingConnection } from '../connection/connection-store.js'
import { randomId } from '../connection/ids.js'
import type { Transport } from '../transports/transport.js'
import type { HttpInbound } from '../transports/http-inbound.js'
import { GET_TRANSPORTS, transportEntry, UPGRADE_TRANSPORT } from '../transports/registry.js'
import { framePayloadLimit, HubUpgrader } from '../transports/websocket-upgrade.js'
import { negotiate, negotiateAnswer, queryValue } from './negotiate.js'
import { serializeHubRequest } from './redact.js'
import type { RouteContext } from './route-context.js'

type Store = ConnectionStore<HubConnection>
type ConnectionSlot = Slot<HubConnection>

const NOT_FOUND = 'No Connection with that ID'
const MIN_POST_BODY_LIMIT = 1024 * 1024

function textReply (reply: FastifyReply, status: number, body: string): FastifyReply {
  return reply.code(status).type('text/plain; charset=utf-8').send(body)
}

function notSupported (reply: FastifyReply, transport: string): FastifyReply {
  return textReply(reply, 404, `${transport} transport not supported by this end point type`)
}

function userIdOf (route: RouteContext, request: FastifyRequest): string | undefined {
  const getUserId = route.options.getUserId
  if (getUserId === null) return undefined
  const id = getUserId(request)
  return id === null || id === undefined ? undefined : String(id)
}

/** Replaces a pending negotiation by a live connection on `transport`. */
function openConnection (
  store: Store, route: RouteContext, request: FastifyRequest, transport: Transport,
  connectionId: string, token: string, stateful = false
): HubConnection {
  const connection = new HubConnection(route, store, transport, request, connectionId, token, userIdOf(route, request), stateful)
  store.add(connection)
  return connection
}

/** What an upgrade opens: a negotiated connection, a reattaching one, or (skipNegotiation) a new one. */
type UpgradeSlot = PendingConnection | HubConnection | null

/** Finds the connection slot a request names with `id=`, answering the error itself when there is none. */
function findSlot (store: Store, route: RouteContext, request: FastifyRequest, reply: FastifyReply): ConnectionSlot | null {
  const token = queryValue(request.query, 'id')
  if (token === undefined) {
    textReply(reply, 400, 'Connection ID required')
    return null
  }
  const slot = store.get(token)
  if (slot === undefined || slot.route !== route) {
    textReply(reply, 404, NOT_FOUND)
    return null
  }
  return slot
}

/**
 * Registers `{path}/negotiate` and the connection endpoint `{path}` on the
 * instance `mapHub` was called on, so that scope's hooks (authentication)
 * run on negotiate, on the WebSocket upgrade and on every HTTP transport request.
 */
export function registerHubRoutes (scope: FastifyInstance, store: Store, route: RouteContext): void {
  const base = route.path.endsWith('/') ? route.path.slice(0, -1) : route.path
  const hubUrl = base === '' ? '/' : base
  const logSerializers = { req: serializeHubRequest }
  // The slot a WebSocket upgrade was checked against, from the guard to the
  // handler, for upgrades left to @fastify/websocket (injectWS).
  const upgrades = new WeakMap<FastifyRequest, UpgradeSlot>()
  const enabled = new Set<string>(route.transports)
  const answer = negotiateAnswer(route)
  const upgrader = new HubUpgrader(framePayloadLimit(route.options.maximumReceiveMessageSize),
    (scope as { websocketServer?: EventEmitter }).websocketServer)

  /** Opens the connection, or reattaches it, on a completed upgrade. */
  function upgraded (socket: WebSocket, request: FastifyRequest, slot: UpgradeSlot | undefined, raw: Duplex | null, log: FastifyBaseLogger | null): void {
    if (slot instanceof HubConnection) {
      if (slot.canReattach && !store.isClosing) slot.reattach(UPGRADE_TRANSPORT.upgrade(socket, raw, log))
      else socket.close(1000)
      return
    }
    // The negotiation may have expired or been taken while the upgrade completed.
    if (slot === undefined || (slot !== null && store.get(slot.token) !== slot) || store.isClosing) {
      socket.close(1000)
      return
    }
    const connectionId = slot === null ? randomId() : slot.connectionId
    const token = slot === null ? connectionId : slot.token
    try {
      openConnection(store, route, request, UPGRADE_TRANSPORT.upgrade(socket, raw, log), connectionId, token, slot?.stateful ?? false)
    } catch (err) {
      request.log.error({ err }, 'could not open the hub connection')
      socket.close(1011)
    }
  }

  /** Upgrades with the hub's own ws server (its limits), or leaves it to @fastify/websocket's handler. */
  function accept (request: FastifyRequest, reply: FastifyReply, slot: UpgradeSlot, done: () => void): void {
    const raw = upgrader.socketOf(request)
    if (raw === null) {
      upgrades.set(request, slot)
      done()
      return
    }
    upgrader.upgrade(request, reply, raw, (socket) => { upgraded(socket, request, slot, raw, request.log) })
  }

  // Negotiate has no body (ASP.NET ignores one), but the official clients send
  // an empty text/plain one: its own context parses no body of any type rather
  // than reading and decoding it (Node discards what is left once the answer
  // is sent). It inherits the scope's hooks.
  scope.register(async function hubNegotiateRoute (child) {
    child.removeAllContentTypeParsers()
    child.addContentTypeParser('*', ignoreBody)
    child.route({
      method: 'POST',
      url: `${base}/negotiate`,
      logSerializers,
      handler (request, reply) {
        negotiate(route, answer, store, request, reply)
      }
    })
  })

  scope.route({
    method: 'GET',
    url: hubUrl,
    logSerializers,
    // Runs after the scope's own hooks: an unauthenticated upgrade never gets here.
    preHandler (request, reply, done) {
      if (!enabled.has(UPGRADE_TRANSPORT.name)) {
        // Without @fastify/websocket (no hub of the plugin has WebSockets) Node
        // hands an upgrade request to the router as a plain GET: refused alike.
        if (request.ws === true || isUpgrade(request)) notSupported(reply, UPGRADE_TRANSPORT.kind)
        else done()
        return
      }
      if (!request.ws) {
        done()
        return
      }
      if (store.isClosing) {
        textReply(reply, 503, 'Server is shutting down')
        return
      }
      const origins = route.options.allowedOrigins
      const origin = request.headers.origin
      if (origins !== null && origin !== undefined && !origins.includes(origin) && !origins.includes('*')) {
        textReply(reply, 403, 'Origin not allowed')
        return
      }
      const token = queryValue(request.query, 'id')
      if (token === undefined) {
        // skipNegotiation: the connection is created on the spot.
        accept(request, reply, null, done)
        return
      }
      const slot = store.get(token) ?? store.adopt(route, token)
      if (slot === undefined || slot.route !== route) {
        textReply(reply, 404, NOT_FOUND)
        return
      }
      if (!('pending' in slot)) {
        if (slot.canReattach) {
          // A stateful-reconnect client coming back on a new WebSocket, even if
          // its old one still looks open here: the token proves it is the owner.
          accept(request, reply, slot, done)
          return
        }
        if (slot.transport.kind !== UPGRADE_TRANSPORT.kind) textReply(reply, 400, 'Cannot change transports mid-connection')
        else textReply(reply, 409, '')
        return
      }
      accept(request, reply, slot, done)
    },
    // The hub's handlers are synchronous and return nothing: a returned reply
    // is a thenable to Fastify, which then watches the response until it
    // finishes (end-of-stream listeners on every poll, held ones included).
    handler (request, reply) {
      serveGet(request, reply)
    },
    wsHandler (socket: WebSocket, request: FastifyRequest) {
      const slot = upgrades.get(request)
      upgrades.delete(request)
      upgraded(socket, request, slot, null, null)
    }
  })

  /** A GET that is not an upgrade: opens an SSE or long-polling connection, or is a poll. */
  function serveGet (request: FastifyRequest, reply: FastifyReply): FastifyReply {
    // The first GET transport that claims the request (SSE for an event-stream Accept, else long polling).
    const entry = GET_TRANSPORTS.find((candidate) => candidate.get.accepts(request))!
    if (entry.network && !enabled.has(entry.name)) return notSupported(reply, entry.kind)
    const slot = findSlot(store, route, request, reply)
    if (slot === null) return reply
    if ('pending' in slot) {
      if (store.isClosing) return textReply(reply, 503, 'Server is shutting down')
      const opened = entry.get.open(request, reply, { clock: store })
      if (opened === null) return textReply(reply, 404, NOT_FOUND)
      openConnection(store, route, request, opened.transport, slot.connectionId, slot.token)
      return opened.answer === undefined ? reply : opened.answer(reply)
    }
    const transport = slot.transport
    if (transport.kind !== entry.kind) return textReply(reply, 400, 'Cannot change transports mid-connection')
    return entry.get.next === undefined ? textReply(reply, 409, '') : entry.get.next(transport, reply, store.now)
  }

  // POST and DELETE carry raw records, never JSON: their own context gets a
  // byte parser for every content type (text/plain and application/octet-stream
  // alike) without touching the user's parsers. It inherits the scope's hooks.
  const limit = route.options.maximumReceiveMessageSize
  const bodyLimit = limit === null ? 100 * 1024 * 1024 : Math.max(MIN_POST_BODY_LIMIT, limit * 4)
  scope.register(async function hubSendRoutes (child) {
    child.removeAllContentTypeParsers()
    // The two types the clients send are named: Fastify caches a named parser
    // by the header's text, where the catch-all is looked up anew (the header
    // parsed) on every POST. '*' keeps taking any other type.
    child.addContentTypeParser(['text/plain', 'application/octet-stream', '*'], { parseAs: 'buffer', bodyLimit }, rawBody)

    child.route({
      method: 'POST',
      url: hubUrl,
      logSerializers,
      bodyLimit,
      // Runs before the body is read: a POST waits here for its connection's turn.
      preParsing (request, reply, payload, done) {
        const inbound = inboundOf(store, route, request)
        if (inbound === null) {
          done(null, payload)
          return
        }
        const grant = (): void => { done(null, payload) }
        // Answered or aborted (even while waiting): the next POST may go. A
        // response closes once: on(), not once(), which wraps every listener.
        reply.raw.on('close', () => { inbound.leave(grant) })
        if (!inbound.enqueue(grant)) textReply(reply, 429, 'Too many concurrent sends on this connection')
      },
      handler (request, reply) {
        const slot = findSlot(store, route, request, reply)
        if (slot === null) return
        if ('pending' in slot || slot.isClosed) {
          textReply(reply, 404, NOT_FOUND)
          return
        }
        const posts = transportEntry(slot.transport.kind).posts
        if (posts === undefined) {
          // ASP.NET's text names the transport in the singular ('WebSocket').
          textReply(reply, 405, `POST requests are not allowed for ${slot.transport.kind.replace(/s$/, '')} connections.`)
          return
        }
        const body = Buffer.isBuffer(request.body) ? request.body : Buffer.alloc(0)
        // Answered at once unless the connection holds its allowance (then when it resumes).
        const taken = posts(slot.transport).receive(body)
        if (taken === undefined) textReply(reply, 200, '')
        else void taken.then(() => { textReply(reply, 200, '') })
      }
    })

    child.route({
      method: 'DELETE',
      url: hubUrl,
      logSerializers,
      handler (request, reply) {
        const slot = findSlot(store, route, request, reply)
        if (slot === null) return
        const terminate = 'pending' in slot ? undefined : transportEntry(slot.transport.kind).terminate
        if ('pending' in slot || terminate === undefined) {
          textReply(reply, 400, 'Cannot terminate this connection using the DELETE endpoint.')
          return
        }
        terminate(slot.transport)
        textReply(reply, 202, '')
      }
    })
  })
}

/** An upgrade request as Node's HTTP server tells them (Upgrade and Connection: upgrade), whether or not it has an 'upgrade' listener. */
function isUpgrade (request: FastifyRequest): boolean {
  return request.headers.upgrade !== undefined && /(?:^|,)\s*upgrade\s*(?:,|$)/i.test(request.headers.connection ?? '')
}

/** The POST queue of the live SSE or long-polling connection a request names, if any (errors are answered later). */
function inboundOf (store: Store, route: RouteContext, request: FastifyRequest): HttpInbound | null {
  const token = queryValue(request.query, 'id')
  const slot = token === undefined ? undefined : store.get(token)
  if (slot === undefined || slot.route !== route || 'pending' in slot || slot.isClosed) return null
  return transportEntry(slot.transport.kind).posts?.(slot.transport).inbound ?? null
}

function ignoreBody (_request: FastifyRequest, _payload: unknown, done: (err: Error | null, body?: unknown) => void): void {
  done(null)
}

function rawBody (_request: FastifyRequest, body: Buffer | string, done: (err: Error | null, body?: unknown) => void): void {
  done(null, body)
}
