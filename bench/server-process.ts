/**
 * A benchmark server run as a child process and driven over its stdio: it
 * prints lines (`READY <port>`, `GC`, …) and takes commands on stdin. What
 * bench/alloc.ts and bench/callgrind.ts share; each adds its own commands.
 */
import type { ChildProcess } from 'node:child_process'
import { createInterface } from 'node:readline'

export class ServerProcess {
  private readonly waiters = new Set<(line: string) => void>()
  /** The end of what the child wrote to stderr, for error messages. */
  private stderr = ''

  protected constructor (readonly child: ChildProcess) {
    createInterface({ input: child.stdout! }).on('line', (line) => { for (const w of this.waiters) w(line) })
    child.stderr!.on('data', (chunk: Buffer) => { this.stderr = (this.stderr + chunk.toString()).slice(-3000) })
    child.on('error', () => {})
  }

  /** The next line the server prints that matches. */
  line (match: RegExp, timeoutMs = 60_000): Promise<RegExpExecArray> {
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`no ${match} from the server within ${timeoutMs} ms: ${this.stderr}`)), timeoutMs)
      const onLine = (line: string): void => {
        const m = match.exec(line)
        if (m === null) return
        clearTimeout(timer)
        this.waiters.delete(onLine)
        resolve(m)
      }
      this.waiters.add(onLine)
    })
  }

  /** A scavenge in the server, answered once it is done. */
  async minorGc (): Promise<void> {
    const done = this.line(/^GC$/)
    this.child.stdin!.write('minor-gc\n')
    await done
  }

  /** Ends stdin and sends SIGTERM; resolves when the child has exited. */
  async stop (): Promise<void> {
    const exited = new Promise((resolve) => this.child.once('exit', resolve))
    this.child.stdin!.end()
    this.child.kill('SIGTERM')
    await exited
  }
}
