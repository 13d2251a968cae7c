import type { FastifyBaseLogger } from 'fastify'
import { wallClock, type Clock } from '../clock.js'
import type { BackplaneStats } from './backplane.js'

const LOG_EVERY_MS = 5000

/**
 * Counts a publication the bus could not take in `stats.dropped`, and warns at
 * most every 5 s (an outage drops thousands a second; one line says enough).
 */
export function dropCounter (stats: BackplaneStats, bus: string, log: () => FastifyBaseLogger | undefined, clock: Clock = wallClock
): (err?: unknown) => void {
  let lastLog = 0
  return (err) => {
    stats.dropped++
    const now = clock()
    if (now - lastLog < LOG_EVERY_MS) return
    lastLog = now
    log()?.warn({ err, dropped: stats.dropped }, `${bus} backplane cannot publish; messages to other servers are being dropped`)
  }
}
