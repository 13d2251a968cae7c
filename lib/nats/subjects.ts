import { codes, describeValue } from '../errors.js'

/**
 * Backplane channels are opaque strings; NATS subjects are `.`-separated
 * tokens in which `.`, `*`, `>` and whitespace mean something (or are not
 * allowed). A channel maps to `<prefix>.<token>.<token>…`: it is cut at each
 * `:` (the scaled manager's separator, so subjects read like
 * `signalr.chat.group.room-1`) and every piece is escaped on its own.
 *
 * Escaping keeps `A-Z a-z 0-9 _ -` and writes every other UTF-8 byte as `%XX`
 * (so `%` itself is `%25`). An empty piece, which NATS does not allow as a
 * token, is written `%`: no escaped piece is ever a lone `%`, so decoding is
 * unambiguous and `subjectToChannel(prefix, channelToSubject(prefix, c)) === c`.
 */

const SAFE = /^[A-Za-z0-9_-]+$/
/** Channels that need no escaping at all: the common case, kept cheap. */
const SAFE_CHANNEL = /^[A-Za-z0-9_-]+(?::[A-Za-z0-9_-]+)*$/
const EMPTY_TOKEN = '%'

function isSafeByte (byte: number): boolean {
  return (byte >= 0x30 && byte <= 0x39) || (byte >= 0x41 && byte <= 0x5a) || (byte >= 0x61 && byte <= 0x7a) ||
    byte === 0x5f || byte === 0x2d
}

export function encodeToken (piece: string): string {
  if (piece === '') return EMPTY_TOKEN
  if (SAFE.test(piece)) return piece
  let out = ''
  for (const byte of Buffer.from(piece, 'utf8')) {
    out += isSafeByte(byte) ? String.fromCharCode(byte) : `%${byte.toString(16).toUpperCase().padStart(2, '0')}`
  }
  return out
}

export function decodeToken (token: string): string {
  if (token === EMPTY_TOKEN) return ''
  if (!token.includes('%')) return token
  const bytes: number[] = []
  for (let i = 0; i < token.length; i++) {
    if (token[i] === '%') {
      const hex = token.slice(i + 1, i + 3)
      if (!/^[0-9A-F]{2}$/.test(hex)) throw new Error(`not an escaped subject token: '${token}'`)
      bytes.push(Number.parseInt(hex, 16))
      i += 2
    } else {
      bytes.push(token.charCodeAt(i))
    }
  }
  return Buffer.from(bytes).toString('utf8')
}

/** Throws unless `prefix` is one or more plain subject tokens (no wildcards, whitespace or empty tokens). */
export function checkSubjectPrefix (prefix: string): void {
  const tokens = prefix.split('.')
  if (tokens.some((token) => token === '' || /[\s*>]/.test(token))) {
    throw new codes.SIGNALR_ERR_INVALID_OPTION('natsBackplane', `option "prefix" must be dot-separated subject tokens without wildcards or whitespace; got ${describeValue(prefix)}`)
  }
}

export function channelToSubject (prefix: string, channel: string): string {
  if (SAFE_CHANNEL.test(channel)) return `${prefix}.${channel.replaceAll(':', '.')}`
  return `${prefix}.${channel.split(':').map(encodeToken).join('.')}`
}

/** The channel a subject of this prefix carries (for tools that watch the subjects). */
export function subjectToChannel (prefix: string, subject: string): string {
  if (!subject.startsWith(`${prefix}.`)) throw new Error(`subject '${subject}' is not under prefix '${prefix}'`)
  return subject.slice(prefix.length + 1).split('.').map(decodeToken).join(':')
}
