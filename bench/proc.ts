/**
 * Readings from /proc for another process: CPU time and memory. Linux only,
 * which is where the benchmark runs (CI and the 2-core dev machine).
 */
import { execFileSync } from 'node:child_process'
import { readFileSync } from 'node:fs'

/** Clock ticks per second, the unit of utime/stime in /proc/<pid>/stat. */
export function clockTicks (): number {
  const ticks = Number(execFileSync('getconf', ['CLK_TCK'], { encoding: 'utf8' }).trim())
  if (!Number.isFinite(ticks) || ticks <= 0) throw new Error('getconf CLK_TCK gave no usable value')
  return ticks
}

/**
 * utime + stime of the whole process (every thread: GC and libuv workers
 * included), in seconds.
 */
export function cpuSeconds (pid: number, ticks: number): number {
  const { user, system } = cpuSplit(pid, ticks)
  return user + system
}

/** utime and stime apart, in seconds: kernel time is mostly the socket writes and reads. */
export function cpuSplit (pid: number, ticks: number): { user: number, system: number } {
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8')
  // The command name (field 2) may hold spaces and parentheses: count from the last ')'.
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ')
  // fields[0] is field 3 (state), so utime (14) and stime (15) sit at 11 and 12.
  return { user: Number(fields[11]) / ticks, system: Number(fields[12]) / ticks }
}

/** A `kB` line of /proc/<pid>/status, e.g. VmRSS (resident now) or VmHWM (peak resident). */
export function statusKB (pid: number, field: 'VmRSS' | 'VmHWM'): number {
  const status = readFileSync(`/proc/${pid}/status`, 'utf8')
  const match = new RegExp(`^${field}:\\s+(\\d+) kB`, 'm').exec(status)
  if (match === null) throw new Error(`no ${field} in /proc/${pid}/status`)
  return Number(match[1])
}
