/**
 * What an idle connection holds on the server: heap bytes by constructor
 * (two heap snapshots, before and after opening N idle connections) and RSS.
 * Deterministic enough for a 2-core shared machine, unlike the storm's timing.
 *
 *   npm run bench:idle                       fastify-signalr JSON and raw ws, 2000 connections
 *   npm run bench:idle -- --conns=N --servers=ws,signalr-json --negotiate --top=25
 *
 * Each server (compiled, on dist/) starts with --expose-gc and
 * --heapsnapshot-signal=SIGUSR1. The driver opens N connections (a SignalR
 * handshake for the hub, skipNegotiation unless --negotiate), waits until the
 * server went quiet, runs a full GC (SIGUSR2) and reads VmRSS, writes a heap
 * snapshot (SIGUSR1), then does the same with the connections open. The table
 * lists the snapshot difference per connection, grouped by node type and
 * constructor, and RSS per connection.
 */
import { spawn } from 'node:child_process'
import { mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { createInterface } from 'node:readline'
import { setTimeout as sleep } from 'node:timers/promises'
import WebSocket from 'ws'
import { buildServers, serverScript } from './built.js'

const RS = '\u001e'
const args = new Map(process.argv.slice(2).map((a) => {
  const [k, v] = a.replace(/^--/, '').split('=')
  return [k!, v ?? 'true'] as const
}))
const CONNS = Number(args.get('conns') ?? 2000)
const SERVERS = (args.get('servers') ?? 'ws,signalr-json').split(',')
const NEGOTIATE = args.has('negotiate')
const TOP = Number(args.get('top') ?? 20)
const CONCURRENCY = 50

interface Server {
  pid: number
  port: number
  line (pattern: RegExp): Promise<RegExpMatchArray>
  stop (): void
}

async function start (name: string, cwd: string): Promise<Server> {
  const child = spawn(process.execPath, ['--expose-gc', '--heapsnapshot-signal=SIGUSR1', serverScript(name), '0'],
    { cwd, stdio: ['pipe', 'pipe', 'inherit'] })
  const waiting: Array<{ pattern: RegExp, resolve: (m: RegExpMatchArray) => void }> = []
  createInterface({ input: child.stdout! }).on('line', (text) => {
    for (let i = 0; i < waiting.length; i++) {
      const match = waiting[i]!.pattern.exec(text)
      if (match === null) continue
      waiting.splice(i, 1)[0]!.resolve(match)
      return
    }
  })
  const line = (pattern: RegExp): Promise<RegExpMatchArray> => new Promise((resolve) => { waiting.push({ pattern, resolve }) })
  const port = Number((await line(/^READY (\d+)$/))[1])
  return { pid: child.pid!, port, line, stop: () => child.kill('SIGTERM') }
}

function rssKB (pid: number): number {
  const status = readFileSync(`/proc/${pid}/status`, 'utf8')
  return Number(/VmRSS:\s+(\d+)/.exec(status)![1])
}

/** Full GC, then RSS and a heap snapshot (the newest .heapsnapshot in cwd). */
async function measure (server: Server, cwd: string, snapshot: boolean): Promise<{ rss: number, heap: Map<string, { size: number, count: number }> }> {
  const gcDone = server.line(/^GC$/)
  process.kill(server.pid, 'SIGUSR2')
  await gcDone
  await sleep(300)
  const rss = rssKB(server.pid)
  if (!snapshot) return { rss, heap: new Map() }
  const before = new Set(readdirSync(cwd))
  process.kill(server.pid, 'SIGUSR1')
  let file: string | undefined
  for (let i = 0; i < 600 && file === undefined; i++) {
    await sleep(100)
    file = readdirSync(cwd).find((f) => f.endsWith('.heapsnapshot') && !before.has(f))
    if (file !== undefined) {
      // Written in one go at the end? Wait until its size stops changing and it parses.
      let text = ''
      for (;;) {
        await sleep(300)
        text = readFileSync(join(cwd, file), 'utf8')
        try { return { rss, heap: byConstructor(JSON.parse(text)) } } catch { /* still writing */ }
      }
    }
  }
  throw new Error('no heap snapshot')
}

interface Snapshot {
  snapshot: { meta: { node_fields: string[], node_types: [string[]] } }
  nodes: number[]
  strings: string[]
}

function byConstructor (snap: Snapshot): Map<string, { size: number, count: number }> {
  const fields = snap.snapshot.meta.node_fields
  const width = fields.length
  const typeAt = fields.indexOf('type')
  const nameAt = fields.indexOf('name')
  const sizeAt = fields.indexOf('self_size')
  const types = snap.snapshot.meta.node_types[0]
  const out = new Map<string, { size: number, count: number }>()
  for (let i = 0; i < snap.nodes.length; i += width) {
    const type = types[snap.nodes[i + typeAt]!]!
    const name = type === 'object' || type === 'closure' || type === 'native' ? snap.strings[snap.nodes[i + nameAt]!]! : ''
    const key = `${type}${name === '' ? '' : ' ' + name}`
    const entry = out.get(key) ?? { size: 0, count: 0 }
    entry.size += snap.nodes[i + sizeAt]!
    entry.count++
    out.set(key, entry)
  }
  return out
}

async function open (port: string, hub: boolean): Promise<WebSocket> {
  let url = `ws://127.0.0.1:${port}/${hub ? 'hub' : ''}`
  if (hub && NEGOTIATE) {
    const res = await fetch(`http://127.0.0.1:${port}/hub/negotiate?negotiateVersion=1`, { method: 'POST' })
    const { connectionToken } = await res.json() as { connectionToken: string }
    url += `?id=${encodeURIComponent(connectionToken)}`
  }
  const ws = new WebSocket(url, { perMessageDeflate: false })
  await new Promise<void>((resolve, reject) => {
    ws.once('open', () => resolve())
    ws.once('error', reject)
  })
  if (!hub) return ws
  await new Promise<void>((resolve) => {
    ws.once('message', () => resolve())
    ws.send(`{"protocol":"json","version":1}${RS}`)
  })
  return ws
}

/** Opens CONNS connections to a fresh server; `snapshot`: heap snapshots too (they leave RSS high, so RSS comes from a run without). */
async function pass (name: string, snapshot: boolean): Promise<{ rss: number, heap: Map<string, { size: number, count: number }> }> {
  const cwd = mkdtempSync(join(tmpdir(), 'idle-'))
  const server = await start(name, cwd)
  const hub = name !== 'ws'
  try {
    // Warm up: the first connections compile and allocate shared things.
    const warm = await Promise.all(Array.from({ length: 20 }, () => open(String(server.port), hub)))
    for (const ws of warm) ws.close()
    await sleep(1000)
    const before = await measure(server, cwd, snapshot)
    const conns: WebSocket[] = []
    // The hub drops a client it has not heard from for 30 s (ClientTimeoutInterval): keep them pinging.
    const pings = setInterval(() => { for (const ws of conns) if (hub && ws.readyState === WebSocket.OPEN) ws.send(`{"type":6}${RS}`) }, 5000)
    for (let i = 0; i < CONNS; i += CONCURRENCY) {
      conns.push(...await Promise.all(Array.from({ length: Math.min(CONCURRENCY, CONNS - i) }, () => open(String(server.port), hub))))
    }
    await sleep(1000)
    const after = await measure(server, cwd, snapshot)
    clearInterval(pings)
    const open_ = conns.filter((ws) => ws.readyState === WebSocket.OPEN).length
    if (open_ !== CONNS) throw new Error(`${CONNS - open_} connections closed before the measurement ended`)
    for (const ws of conns) ws.terminate()
    const heap = new Map<string, { size: number, count: number }>()
    for (const [key, a] of after.heap) {
      const b = before.heap.get(key) ?? { size: 0, count: 0 }
      heap.set(key, { size: a.size - b.size, count: a.count - b.count })
    }
    return { rss: after.rss - before.rss, heap }
  } finally {
    server.stop()
    rmSync(cwd, { recursive: true, force: true })
  }
}

async function run (name: string): Promise<void> {
  const { rss } = await pass(name, false)
  const { heap } = await pass(name, true)
  const hub = name !== 'ws'
  let total = 0
  const rows: Array<[string, number, number]> = []
  for (const [key, d] of heap) {
    total += d.size / CONNS
    rows.push([key, d.size / CONNS, d.count / CONNS])
  }
  rows.sort((x, y) => Math.abs(y[1]) - Math.abs(x[1]))
  process.stdout.write(`\n## ${name}${hub && NEGOTIATE ? ' (negotiate)' : ''}: ${CONNS} idle connections\n`)
  process.stdout.write(`RSS per connection: ${(rss / CONNS).toFixed(2)} KB; heap per connection: ${total.toFixed(0)} bytes\n\n`)
  process.stdout.write('| node type and constructor | bytes / conn | count / conn |\n|---|---:|---:|\n')
  for (const [key, size, count] of rows.slice(0, TOP)) process.stdout.write(`| ${key} | ${size.toFixed(0)} | ${count.toFixed(2)} |\n`)
}

buildServers()
for (const name of SERVERS) await run(name)
