/**
 * Micro-benchmark of the two hub protocols on typical small messages: parse
 * (a reader turning one framed message into a HubMessage) and write (encode
 * with framing), in ns per operation.
 *
 *   node --import tsx bench/codec-micro.ts                      this tree only
 *   node --import tsx bench/codec-micro.ts --against=2360139    and a commit, side by side
 *   node --import tsx bench/codec-micro.ts --against=2360139,2f95b77   several (ratios to the first)
 *
 * `--against` extracts each commit's lib/ with `git archive` into a temporary
 * folder (removed at the end) and loads all codecs in this one process. The
 * versions take turns batch by batch, so that machine noise hits both. A
 * round times `--batches` (default 5) short batches of `--ops` operations of
 * each version in CPU time and keeps the fastest (noise on a shared machine
 * only ever adds time); each figure is the median of `--rounds` (default 3).
 */
import { execFileSync } from 'node:child_process'
import { mkdirSync, mkdtempSync, rmSync, symlinkSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { dirname, join } from 'node:path'
import { fileURLToPath, pathToFileURL } from 'node:url'
import type { HubProtocol } from '../lib/protocol/hub-protocol.js'
import type { HubMessage } from '../lib/protocol/messages.js'

const rootDir = dirname(dirname(fileURLToPath(import.meta.url)))

function flag (name: string): string | undefined {
  const prefix = `--${name}=`
  return process.argv.find((a) => a.startsWith(prefix))?.slice(prefix.length)
}

const against = flag('against')
const rounds = Number(flag('rounds') ?? 3)
const batches = Number(flag('batches') ?? 5)
/** Operations per timed batch; a batch of the slowest case takes about 30 ms. */
const batch = Number(flag('ops') ?? 20_000)

interface Codecs {
  label: string
  json: HubProtocol
  messagepack: HubProtocol
}

async function load (libDir: string, label: string): Promise<Codecs> {
  const json = await import(pathToFileURL(join(libDir, 'protocol/json.ts')).href) as { jsonProtocol: HubProtocol }
  const mp = await import(pathToFileURL(join(libDir, 'protocol/messagepack.ts')).href) as { messagePackProtocol: HubProtocol }
  return { label, json: json.jsonProtocol, messagepack: mp.messagePackProtocol }
}

const messages: Array<{ name: string, message: HubMessage }> = [
  {
    name: 'Invocation, 2 string args',
    message: { type: 1, invocationId: '17', target: 'SendMessage', arguments: ['alice', 'hello there, how are you?'] }
  },
  {
    name: 'Completion, number',
    message: { type: 3, invocationId: '17', hasResult: true, result: 12345 }
  },
  {
    name: 'broadcast {user,text,ts}',
    message: { type: 1, target: 'ReceiveMessage', arguments: [{ user: 'alice', text: 'hello everyone in the room', ts: 1764442800000 }] }
  },
  {
    // Not small: where the guards' walks cost most (10 objects, 2 levels of nesting).
    name: 'room state, 8 users',
    message: {
      type: 3,
      invocationId: '18',
      hasResult: true,
      result: {
        room: 'lobby',
        users: Array.from({ length: 8 }, (_, i) => ({ id: i, name: `user${i}`, online: i % 2 === 0, tags: ['a', 'b'] }))
      }
    }
  }
]

type Op = () => void

function writeOp (protocol: HubProtocol, message: HubMessage): Op {
  return () => { protocol.encode(message) }
}

function parseOp (protocol: HubProtocol, message: HubMessage): Op {
  const reader = protocol.createReader(null)
  const bytes = protocol.encode(message)
  const out: HubMessage[] = []
  return () => {
    out.length = 0
    reader.read(bytes, out)
    if (out.length !== 1) throw new Error('the reader lost the message')
  }
}

/**
 * ns per op of one batch, in this process's CPU time: on a busy shared
 * machine, wall time would also count the time the process waited for a core.
 */
function time (op: Op): number {
  const start = process.cpuUsage()
  for (let i = 0; i < batch; i++) op()
  const used = process.cpuUsage(start)
  return (used.user + used.system) * 1000 / batch
}

/** The fastest of `batches` batches of each version, the versions taking turns batch by batch. */
function timeRound (ops: Op[]): number[] {
  const best = ops.map(() => Number.POSITIVE_INFINITY)
  for (let b = 0; b < batches; b++) {
    ops.forEach((op, v) => { best[v] = Math.min(best[v]!, time(op)) })
  }
  return best
}

function median (values: number[]): number {
  const sorted = [...values].sort((a, b) => a - b)
  return sorted[Math.floor(sorted.length / 2)]!
}

async function main (): Promise<void> {
  const versions: Codecs[] = []
  const tempDir = mkdtempSync(join(tmpdir(), 'codec-micro-'))
  try {
    for (const commit of against === undefined ? [] : against.split(',')) {
      const dir = join(tempDir, commit)
      mkdirSync(dir)
      const tar = execFileSync('git', ['archive', commit, 'lib'], { cwd: rootDir, maxBuffer: 64 * 1024 * 1024 })
      execFileSync('tar', ['-x', '-C', dir], { input: tar })
      // The old code resolves msgpackr from here, and loads as ES modules like this tree.
      symlinkSync(join(rootDir, 'node_modules'), join(dir, 'node_modules'), 'dir')
      writeFileSync(join(dir, 'package.json'), '{ "type": "module" }\n')
      versions.push(await load(join(dir, 'lib'), commit))
    }
    versions.push(await load(join(rootDir, 'lib'), 'this tree'))
    const cases: Array<{ name: string, ops: Op[] }> = []
    for (const protocolName of ['json', 'messagepack'] as const) {
      for (const { name, message } of messages) {
        for (const kind of ['parse', 'write'] as const) {
          cases.push({
            name: `${protocolName.padEnd(11)} ${kind} ${name}`,
            ops: versions.map((v) => kind === 'parse' ? parseOp(v[protocolName], message) : writeOp(v[protocolName], message))
          })
        }
      }
    }
    // Warm-up: every op compiled before anything is timed.
    for (const c of cases) timeRound(c.ops)
    const samples = cases.map((c) => c.ops.map((): number[] => []))
    for (let r = 0; r < rounds; r++) {
      for (let i = 0; i < cases.length; i++) {
        timeRound(cases[i]!.ops).forEach((ns, v) => samples[i]![v]!.push(ns))
      }
    }
    // Ratios are to the first version named.
    const head = versions.map((v) => v.label.slice(0, 10).padStart(10)).join(' ')
    const ratioHead = versions.slice(1).map((v) => `× ${v.label.slice(0, 7)}`.padStart(10)).join(' ')
    console.log(`node ${process.version}, best of ${batches} batches of ${batch} ops, median of ${rounds} rounds, ns/op`)
    console.log(`${'case'.padEnd(50)} ${head} ${ratioHead}`)
    for (let i = 0; i < cases.length; i++) {
      const ns = samples[i]!.map(median)
      const ratios = ns.slice(1).map((n) => `${(n / ns[0]!).toFixed(2)}×`.padStart(10)).join(' ')
      console.log(`${cases[i]!.name.padEnd(50)} ${ns.map((n) => n.toFixed(0).padStart(10)).join(' ')} ${ratios}`)
    }
  } finally {
    rmSync(tempDir, { recursive: true, force: true })
  }
}

await main()
