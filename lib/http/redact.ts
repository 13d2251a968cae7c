import type { FastifyRequest } from 'fastify'

const SECRET_QUERY = /([?&](?:id|access_token)=)[^&#]*/gi

/** Hides the connection token and access tokens in a URL before it reaches a log. */
export function redactUrl (url: string): string {
  return url.replace(SECRET_QUERY, '$1[redacted]')
}

/**
 * The request serializer for hub routes: Fastify's usual fields, with the
 * secrets in the query string redacted. The token is a bearer credential for
 * the connection, so it must never be written to logs.
 */
export function serializeHubRequest (request: FastifyRequest): Record<string, unknown> {
  return {
    method: request.method,
    url: redactUrl(request.url),
    version: request.headers['accept-version'],
    host: request.host,
    remoteAddress: request.ip,
    remotePort: request.socket?.remotePort
  }
}
