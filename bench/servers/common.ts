import { PerformanceObserver, constants } from 'node:perf_hooks'
import { getHeapSpaceStatistics } from 'node:v8'

/**
 * What every benchmark server shares with the driver: the port it is given,
 * the READY line, a GC on demand and an exit when the driver goes away.
 */

/** argv[2], else $PORT, else 0 (any free port; the READY line says which). */
export function portFromArgs (): number {
  const raw = process.argv[2] ?? process.env.PORT ?? '0'
  const port = Number(raw)
  if (!Number.isInteger(port) || port < 0 || port > 65535) throw new Error(`bad port ${raw}`)
  return port
}

export function announce (port: number): void {
  process.stdout.write(`READY ${port}\n`)
}

/**
 * SIGUSR2 runs a full GC (the driver starts servers with --expose-gc) so that
 * idle-connection memory is measured as what stays alive, not as garbage that
 * happens to be waiting; the GC line tells the driver it is done. SIGTERM
 * exits normally so that `--cpu-prof` writes its profile. The end of stdin
 * means the driver is gone, however it died: leave no orphan behind.
 */
export function driverControls (): void {
  process.on('SIGUSR2', () => {
    const gc = (globalThis as { gc?: () => void }).gc
    if (gc !== undefined) {
      gc()
      gc()
    }
    process.stdout.write('GC\n')
  })
  // A `minor-gc` line on stdin runs a scavenge only (bench/instructions.ts: an
  // empty young generation before each counted phase, and no old-space sweeping
  // left running into it).
  process.stdin.setEncoding('utf8').on('data', (chunk: string) => {
    const lines = chunk.split('\n')
    // An `alloc` line answers what bench/alloc.ts counts: bytes allocated so far and collections since the last `alloc`.
    if (lines.includes('alloc')) process.stdout.write(allocLine())
    if (!lines.includes('minor-gc')) return
    const gc = (globalThis as { gc?: (options?: { type: 'minor' }) => void }).gc
    if (gc !== undefined) gc({ type: 'minor' })
    process.stdout.write('GC\n')
  })
  process.on('SIGTERM', () => process.exit(0))
  process.stdin.on('end', () => process.exit(0))
  process.stdin.on('error', () => process.exit(0))
  process.stdin.resume()
}

/** Started by the first `alloc` request, so servers that are never asked pay nothing. */
let gcObserver: PerformanceObserver | null = null
let minorGcs = 0
let otherGcs = 0

function countGcs (entries: readonly PerformanceEntry[]): void {
  for (const entry of entries) {
    if ((entry as unknown as { detail?: { kind?: number } }).detail?.kind === constants.NODE_PERFORMANCE_GC_MINOR) minorGcs++
    else otherGcs++
  }
}

/**
 * `ALLOC <bytes in use, every heap space> <scavenges> <other collections>`,
 * the collections counted since the previous `alloc` line (the observer's
 * callback runs later than the collection; takeRecords() takes what it has
 * not been given yet). Between two lines with no collection in between, the
 * growth in use is exactly what was allocated (Node 20 has no
 * total_allocated_bytes).
 */
function allocLine (): string {
  if (gcObserver === null) {
    gcObserver = new PerformanceObserver((list) => { countGcs(list.getEntries()) })
    gcObserver.observe({ entryTypes: ['gc'] })
  } else {
    countGcs(gcObserver.takeRecords())
  }
  let used = 0
  for (const space of getHeapSpaceStatistics()) used += space.space_used_size
  const line = `ALLOC ${used} ${minorGcs} ${otherGcs}\n`
  minorGcs = 0
  otherGcs = 0
  return line
}
