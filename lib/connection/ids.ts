import { randomBytes } from 'node:crypto'

/**
 * 16 cryptographically random bytes, base64url (22 characters, URL-safe: the
 * official client puts the token in `id=` without encoding it).
 */
export function randomId (): string {
  return randomBytes(16).toString('base64url')
}

/**
 * A negotiated connection's public id and its secret token. The token is what
 * `id=` carries; the public id may be shown to other clients, so it must never
 * grant access to the connection.
 */
export function newConnectionIds (negotiateVersion: number): { connectionId: string, token: string } {
  const connectionId = randomId()
  // Version 0 clients copy connectionId into `id=`, so there the two are the same (as in ASP.NET).
  const token = negotiateVersion >= 1 ? randomId() : connectionId
  return { connectionId, token }
}
