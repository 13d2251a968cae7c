import { createHmac, randomBytes, timingSafeEqual } from 'node:crypto'

const ID_BYTES = 16
const POOL_SIZE = ID_BYTES * 256
let pool = Buffer.alloc(0)
let poolOffset = POOL_SIZE
/** The typed-array builtin: Buffer#fill's argument handling is most of its cost for 16 bytes. */
const zeroFill = Uint8Array.prototype.fill

/**
 * 16 cryptographically random bytes, base64url (22 characters, URL-safe: the
 * official client puts the token in `id=` without encoding it). Bytes come
 * from a pool refilled 4 KiB at a time: one crypto call per 256 ids instead
 * of one per id (every negotiate needs two).
 */
export function randomId (): string {
  if (poolOffset >= POOL_SIZE) {
    pool = randomBytes(POOL_SIZE)
    poolOffset = 0
  }
  const id = pool.toString('base64url', poolOffset, poolOffset + ID_BYTES)
  // Never hand out the same bytes twice.
  zeroFill.call(pool, 0, poolOffset, poolOffset + ID_BYTES)
  poolOffset += ID_BYTES
  return id
}

/**
 * Self-describing connection tokens for scale-out without sticky sessions:
 * `<connectionId>.<issued, base36 ms>.<stateful 0|1>.<HMAC-SHA256>`, the MAC
 * over the hub path and those fields with the secret the servers share. Any
 * server can then accept a WebSocket for a connection another one negotiated.
 * The MAC keeps the token unforgeable although the public id is in it; the
 * issue time limits it to the negotiate window, like a pending negotiation.
 */
export class TokenSigner {
  private readonly secret: string

  constructor (secret: string) {
    this.secret = secret
  }

  issue (path: string, connectionId: string, issuedAt: number, stateful: boolean): string {
    const body = `${connectionId}.${issuedAt.toString(36)}.${stateful ? 1 : 0}`
    return `${body}.${this.mac(path, body)}`
  }

  /** The connection a token names, when it is genuine for `path` and not older than `maxAge`. */
  verify (path: string, token: string, now: number, maxAge: number): { connectionId: string, stateful: boolean } | null {
    const parts = token.split('.')
    if (parts.length !== 4) return null
    const [connectionId, issued, stateful, mac] = parts as [string, string, string, string]
    const expected = this.mac(path, `${connectionId}.${issued}.${stateful}`)
    const given = Buffer.from(mac)
    const wanted = Buffer.from(expected)
    if (given.length !== wanted.length || !timingSafeEqual(given, wanted)) return null
    const issuedAt = parseInt(issued, 36)
    if (!Number.isFinite(issuedAt) || now - issuedAt > maxAge || issuedAt - now > maxAge) return null
    return { connectionId, stateful: stateful === '1' }
  }

  private mac (path: string, body: string): string {
    return createHmac('sha256', this.secret).update(path).update('|').update(body).digest('base64url')
  }
}
