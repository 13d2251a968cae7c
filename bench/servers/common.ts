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
    if (!chunk.split('\n').includes('minor-gc')) return
    const gc = (globalThis as { gc?: (options?: { type: 'minor' }) => void }).gc
    if (gc !== undefined) gc({ type: 'minor' })
    process.stdout.write('GC\n')
  })
  process.on('SIGTERM', () => process.exit(0))
  process.stdin.on('end', () => process.exit(0))
  process.stdin.on('error', () => process.exit(0))
  process.stdin.resume()
}
