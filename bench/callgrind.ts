/**
 * What bench/instructions.ts and bench/instructions-http.ts share: a
 * benchmark server run under valgrind's callgrind, whose counters the driver
 * zeroes and dumps around each measured phase, and the figures' formatting.
 */
import { execFile } from 'node:child_process'
import { mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { setTimeout as sleep } from 'node:timers/promises'
import { promisify } from 'node:util'
import { serverScript } from './built.js'
import { ServerProcess } from './server-process.js'

const run = promisify(execFile)
/** Idle time before each phase, for V8's background work (compiling, sweeping) to finish outside it. */
const SETTLE_MS = Number(process.env.BENCH_SETTLE_MS ?? 1500)

/**
 * The server's node flags (BENCH_NODE_FLAGS, space-separated, replaces them).
 * --jitless: with the optimizing compilers, when V8 compiles and what it
 * inlines moved the counts by 10-40 % between identical phases; the
 * interpreter's counts repeat within about 2 %. They measure how much
 * JavaScript work an operation does, not the quality of optimized code.
 * With a fixed 64 MB young generation emptied (a scavenge) before each phase,
 * no GC at all runs inside one: the counts leave garbage collection out.
 */
const NODE_FLAGS = (process.env.BENCH_NODE_FLAGS ?? '--jitless --min-semi-space-size=64 --max-semi-space-size=64').split(' ').filter(Boolean)

/** The valgrind process, killed however the driver ends. */
let live: ReturnType<typeof execFile> | null = null
process.on('exit', () => { live?.kill('SIGKILL') })
for (const signal of ['SIGINT', 'SIGTERM', 'SIGHUP'] as const) process.once(signal, () => process.exit(130))

export function fail (err: Error): never {
  process.stderr.write(`bench:instructions: ${err.message}\n`)
  process.exit(1)
}

export class Server extends ServerProcess {
  private constructor (child: ReturnType<typeof execFile>, readonly outDir: string) {
    super(child)
  }

  static start (script = 'signalr-json'): Server {
    const outDir = mkdtempSync(join(tmpdir(), 'fsr-callgrind-'))
    const child = execFile('valgrind', [
      '--tool=callgrind', '--instr-atstart=no', `--callgrind-out-file=${join(outDir, 'cg.out')}`,
      process.execPath, ...NODE_FLAGS, '--expose-gc', serverScript(script), '0'
    ], { maxBuffer: 64 * 1024 * 1024 })
    live = child
    return new Server(child, outDir)
  }

  get pid (): number {
    return this.child.pid!
  }

  async control (...args: string[]): Promise<void> {
    await run('callgrind_control', [...args, String(this.pid)])
  }

  /**
   * A scavenge, then the counters zeroed once the server has been idle for
   * SETTLE_MS. Not a full GC: its sweeping and code flushing would land in the phase.
   */
  async startPhase (): Promise<void> {
    await this.minorGc()
    await sleep(SETTLE_MS)
    await this.control('-z')
  }

  /** Dumps the counters and answers the instructions since startPhase(). */
  async endPhase (): Promise<number> {
    const before = new Set(readdirSync(this.outDir))
    await this.control('-d')
    const fresh = readdirSync(this.outDir).filter((f) => !before.has(f))
    if (fresh.length !== 1) throw new Error(`expected one new callgrind dump, found ${fresh.length}`)
    const text = readFileSync(join(this.outDir, fresh[0]!), 'utf8')
    const total = /^(?:totals|summary): (\d+)/m.exec(text)
    if (total === null) throw new Error(`no totals line in ${fresh[0]}`)
    return Number(total[1])
  }

  override async stop (): Promise<void> {
    await super.stop()
    // BENCH_KEEP_DUMPS=1 keeps the dumps, for callgrind_annotate.
    if (process.env.BENCH_KEEP_DUMPS === undefined) rmSync(this.outDir, { recursive: true, force: true })
    else process.stderr.write(`callgrind dumps kept in ${this.outDir}\n`)
  }
}

export function median (values: number[]): number {
  const sorted = [...values].sort((a, b) => a - b)
  const mid = sorted.length >> 1
  return sorted.length % 2 === 1 ? sorted[mid]! : (sorted[mid - 1]! + sorted[mid]!) / 2
}

export const int = (n: number): string => Math.round(n).toLocaleString('en-US')
export const pct = (n: number): string => `${n >= 0 ? '+' : ''}${(n * 100).toFixed(1)} %`
