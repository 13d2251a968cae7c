import { spawn, type ChildProcess } from 'node:child_process'
import { fileURLToPath } from 'node:url'
import type { Test } from 'tap'

const ROOT = fileURLToPath(new URL('../..', import.meta.url))
/** How long a child may take to exit once its stdin ends (writing coverage included) before it is killed. */
const LIFELINE_EXIT_MS = 5000

export interface NodeChild {
  readonly child: ChildProcess
  /** Resolves with how the process ended. */
  readonly exited: Promise<{ code: number | null, signal: NodeJS.Signals | null }>
  /** The last 8000 characters the child wrote to stderr. */
  stderr (): string
  /** The complete lines the child wrote to stdout so far. */
  lines (): readonly string[]
  /**
   * Resolves with the first stdout line, printed already or yet to come, that
   * `match` accepts; rejects, saying `what` was missing, if the child exits
   * first or `boundMs` (if given) pass.
   */
  line (match: (line: string) => boolean, what: string, boundMs?: number): Promise<string>
}

/**
 * Runs `node <args>` from the repository root with `env` added to this
 * process's; `name` is for messages. In teardown its stdin ends (the fixtures exit on that) and it is
 * killed by PID if it has not exited within a bound; it is killed when this process exits, whatever
 * happened in between.
 */
export function spawnNode (t: Test, name: string, args: string[], env: Record<string, string> = {}): NodeChild {
  const child = spawn(process.execPath, args, {
    cwd: ROOT,
    env: { ...process.env, ...env },
    // stdin stays open as a lifeline: the child exits when it ends (this process died).
    stdio: ['pipe', 'pipe', 'pipe']
  })
  const killOnExit = (): void => { child.kill('SIGKILL') }
  process.once('exit', killOnExit)
  const exited = new Promise<{ code: number | null, signal: NodeJS.Signals | null }>((resolve) => {
    child.once('exit', (code, signal) => { resolve({ code, signal }) })
  })
  t.teardown(async () => {
    process.off('exit', killOnExit)
    if (child.exitCode === null && child.signalCode === null) {
      // Ending stdin first lets a child that watches its lifeline exit by itself: a process killed
      // by a signal never writes its V8 coverage (NODE_V8_COVERAGE), so c8 would miss all it ran.
      child.stdin!.end()
      const bound = new Promise((resolve) => { setTimeout(resolve, LIFELINE_EXIT_MS).unref() })
      await Promise.race([exited, bound])
      if (child.exitCode === null && child.signalCode === null) process.kill(child.pid!, 'SIGKILL')
    }
    await exited
  })

  let stderr = ''
  child.stderr!.setEncoding('utf8').on('data', (chunk: string) => { stderr = (stderr + chunk).slice(-8000) })
  const lines: string[] = []
  const listeners = new Set<() => void>()
  let partial = ''
  child.stdout!.setEncoding('utf8').on('data', (chunk: string) => {
    const complete = (partial + chunk).split('\n')
    partial = complete.pop()!
    lines.push(...complete)
    for (const listener of [...listeners]) listener()
  })
  let ended: string | null = null
  void exited.then(({ code, signal }) => {
    ended = `exited (code ${code}, signal ${signal})`
    for (const listener of [...listeners]) listener()
  })
  const line = (match: (l: string) => boolean, what: string, boundMs?: number): Promise<string> => new Promise((resolve, reject) => {
    const settle = (): void => {
      listeners.delete(check)
      clearTimeout(timer)
    }
    const check = (): void => {
      const found = lines.find(match)
      if (found !== undefined) {
        settle()
        resolve(found)
      } else if (ended !== null) {
        settle()
        reject(new Error(`${name} ${ended} before ${what}; stderr: ${stderr}`))
      }
    }
    const timer = boundMs === undefined
      ? undefined
      : setTimeout(() => { settle(); reject(new Error(`${name} did not print ${what} within ${boundMs} ms; stderr: ${stderr}`)) }, boundMs)
    listeners.add(check)
    check()
  })
  return { child, exited, stderr: () => stderr, lines: () => lines, line }
}
