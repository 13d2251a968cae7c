import type { FastifyReply, FastifyRequest } from 'fastify'
import type { ConnectionStore } from '../connection/connection-store.js'
import { negotiateEntry, TRANSPORTS } from '../transports/registry.js'
import type { RouteContext } from './route-context.js'

/** The highest negotiate version this server speaks (1: separate connection token). */
const MAX_NEGOTIATE_VERSION = 1

/** Negotiate's transport items, built once, by the `transports` option's name. */
const TRANSPORT_ENTRIES: ReadonlyMap<string, string> = new Map(TRANSPORTS.map((entry) => [entry.name, negotiateEntry(entry)]))
/** The transports that carry stateful reconnect. */
const REATTACHING = new Set<string>(TRANSPORTS.filter((entry) => entry.canReattach).map((entry) => entry.name))

/** Reads a query key case-insensitively (ASP.NET reads `NegotiateVersion` as well). */
export function queryValue (query: unknown, key: string): string | undefined {
  if (query === null || typeof query !== 'object') return undefined
  const record = query as Record<string, unknown>
  let value = record[key]
  if (value === undefined) {
    const lower = key.toLowerCase()
    for (const k of Object.keys(record)) {
      if (k.toLowerCase() === lower) {
        value = record[k]
        break
      }
    }
  }
  if (Array.isArray(value)) value = value[0]
  return typeof value === 'string' ? value : undefined
}

function sendJson (reply: FastifyReply, body: string): FastifyReply {
  return reply.code(200).header('content-type', 'application/json; charset=utf-8').send(body)
}

/** What a hub's negotiate answers always say, worked out once per hub rather than per request. */
export interface NegotiateAnswer {
  /** The `availableTransports` items, joined. */
  readonly transports: string
  /** A transport that carries stateful reconnect is enabled and the hub allows it. */
  readonly canReconnectStatefully: boolean
}

export function negotiateAnswer (route: RouteContext): NegotiateAnswer {
  return {
    transports: route.transports.map((name) => TRANSPORT_ENTRIES.get(name)!).join(','),
    canReconnectStatefully: route.options.allowStatefulReconnects && route.transports.some((name) => REATTACHING.has(name))
  }
}

/** The negotiate version a client asked for, as ASP.NET reads it; a string is the error to answer with. */
function requestedVersion (requested: string | undefined): number | string {
  if (requested === undefined) return 0
  // What every current client sends, without the pattern match.
  if (requested === '1') return 1
  if (!/^-?\d+$/.test(requested)) return '{"error":"The client requested a non-integer protocol version."}'
  const n = Number(requested)
  if (n < 0) return JSON.stringify({ error: `The client requested version '${requested}', but the server does not support this version.` })
  return Math.min(n, MAX_NEGOTIATE_VERSION)
}

/**
 * `POST {path}/negotiate`: creates a connection and answers with its public id,
 * its secret token (version 1) and the transports this hub offers. Errors are
 * still HTTP 200 with an `error` key: that is what the clients expect.
 */
export function negotiate (route: RouteContext, answer: NegotiateAnswer, store: ConnectionStore, request: FastifyRequest, reply: FastifyReply): FastifyReply {
  if (store.isClosing) return reply.code(503).type('text/plain').send('Server is shutting down')
  const version = requestedVersion(queryValue(request.query, 'negotiateVersion'))
  if (typeof version === 'string') return sendJson(reply, version)
  // Stateful reconnect only when the hub allows it and the client asked (and only WebSockets carry it).
  const stateful = answer.canReconnectStatefully && queryValue(request.query, 'useStatefulReconnect') === 'true'
  const slot = store.createPending(route, version, stateful)
  const body = (stateful ? '{"useStatefulReconnect":true,"negotiateVersion":' : '{"negotiateVersion":') + version +
    ',"connectionId":' + JSON.stringify(slot.connectionId) +
    (version >= 1 ? ',"connectionToken":' + JSON.stringify(slot.token) : '') +
    ',"availableTransports":[' + answer.transports + ']}'
  return sendJson(reply, body)
}
