import { isIPv4 } from 'node:net'

/**
 * True for addresses of this machine: 127.0.0.0/8, ::1 and IPv4-mapped
 * 127.x (`::ffff:127.0.0.1`, what a dual-stack socket reports).
 */
export function isLoopback (address: string | undefined): boolean {
  if (address === undefined) return false
  const lower = address.toLowerCase()
  if (lower === '::1' || lower === '0:0:0:0:0:0:0:1') return true
  const v4 = lower.startsWith('::ffff:') ? lower.slice(7) : lower
  return isIPv4(v4) && v4.startsWith('127.')
}
