import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify'
import type { WebSocket } from 'ws'
import { HubConnection } from '../connection/connection.js'
import type { ConnectionStore, PendingConnection } from '../connection/connection-store.js'
import { randomId } from '../connection/ids.js'
import { WebSocketTransport } from '../transports/websockets.js'
import { negotiate, queryValue } from './negotiate.js'
import { serializeHubRequest } from './redact.js'
import type { RouteContext } from './route-context.js'

const NOT_FOUND = 'No Connection with that ID'

function textReply (reply: FastifyReply, status: number, body: string): FastifyReply {
  return reply.code(status).type('text/plain; charset=utf-8').send(body)
}

function userIdOf (route: RouteContext, request: FastifyRequest): string | undefined {
  const getUserId = route.options.getUserId
  if (getUserId === null) return undefined
  const id = getUserId(request)
  return id === null || id === undefined ? undefined : String(id)
}

/**
 * Registers `{path}/negotiate` and the connection endpoint `{path}` on the
 * instance `mapHub` was called on, so that scope's hooks (authentication)
 * run on negotiate and on the WebSocket upgrade alike.
 */
export function registerHubRoutes (scope: FastifyInstance, store: ConnectionStore, route: RouteContext): void {
  const base = route.path.endsWith('/') ? route.path.slice(0, -1) : route.path
  const hubUrl = base === '' ? '/' : base
  const logSerializers = { req: serializeHubRequest }
  // The slot a WebSocket upgrade was checked against, from the guard to the handler.
  const upgrades = new WeakMap<FastifyRequest, PendingConnection | null>()
  const webSockets = route.transports.includes('webSockets')

  scope.route({
    method: 'POST',
    url: `${base}/negotiate`,
    logSerializers,
    handler (request, reply) {
      return negotiate(route, store, request, reply)
    }
  })

  scope.route({
    method: 'GET',
    url: hubUrl,
    logSerializers,
    // Runs after the scope's own hooks: an unauthenticated upgrade never gets here.
    preHandler (request, reply, done) {
      if (!request.ws) {
        done()
        return
      }
      if (!webSockets) {
        textReply(reply, 404, 'WebSockets transport not supported by this end point type')
        return
      }
      if (store.isClosing) {
        textReply(reply, 503, 'Server is shutting down')
        return
      }
      const token = queryValue(request.query, 'id')
      if (token === undefined) {
        // skipNegotiation: the connection is created on the spot.
        upgrades.set(request, null)
        done()
        return
      }
      const slot = store.get(token)
      if (slot === undefined || slot.route !== route) {
        textReply(reply, 404, NOT_FOUND)
        return
      }
      if (!('pending' in slot)) {
        textReply(reply, 409, '')
        return
      }
      upgrades.set(request, slot)
      done()
    },
    handler (request, reply) {
      // Plain HTTP on the hub URL: Server-Sent Events and long polling, not served by this build.
      if (queryValue(request.query, 'id') === undefined) return textReply(reply, 400, 'Connection ID required')
      const accept = request.headers.accept ?? ''
      const name = accept.includes('text/event-stream') ? 'ServerSentEvents' : 'LongPolling'
      return textReply(reply, 404, `${name} transport not supported by this end point type`)
    },
    wsHandler (socket: WebSocket, request: FastifyRequest) {
      const slot = upgrades.get(request)
      upgrades.delete(request)
      // The negotiation may have expired or been taken while the upgrade completed.
      if (slot === undefined || (slot !== null && store.get(slot.token) !== slot) || store.isClosing) {
        socket.close(1000)
        return
      }
      let userId: string | undefined
      try {
        userId = userIdOf(route, request)
      } catch (err) {
        request.log.error({ err }, 'getUserId failed; closing the connection')
        socket.close(1011)
        return
      }
      const connectionId = slot === null ? randomId() : slot.connectionId
      const token = slot === null ? connectionId : slot.token
      const connection = new HubConnection(route, store, new WebSocketTransport(socket), request, connectionId, token, userId)
      store.add(connection)
    }
  })

  scope.route({
    method: ['POST', 'DELETE'],
    url: hubUrl,
    logSerializers,
    handler (request, reply) {
      const token = queryValue(request.query, 'id')
      if (token === undefined) return textReply(reply, 400, 'Connection ID required')
      const slot = store.get(token)
      if (slot === undefined || slot.route !== route) return textReply(reply, 404, NOT_FOUND)
      if (!('pending' in slot) && slot.transport.kind === 'WebSockets') {
        return request.method === 'POST'
          ? textReply(reply, 405, 'POST requests are not allowed for WebSocket connections.')
          : textReply(reply, 400, 'Cannot terminate this connection using the DELETE endpoint.')
      }
      return textReply(reply, 404, 'LongPolling transport not supported by this end point type')
    }
  })
}
