/**
 * Server-side heap allocation per echo invocation, JSON and MessagePack, with
 * the raw `ws` echo server as the floor: a count that a busy machine does not
 * move, where latency and CPU figures would.
 *
 *   npm run bench:alloc                       table for signalr-json, signalr-msgpack, ws
 *   --n=N (echoes per measured phase, default 4000), --reps=N (default 5),
 *   --conns=N (connections echoing at once, default 8), --servers=a,b
 *
 * Each server (compiled, on dist/; bench/built.ts) runs in its own process;
 * the load comes from this one, so the figures are the server's alone.
 *
 * Bytes: the server runs with a 64 MB young generation. Before each phase a
 * scavenge empties it (`minor-gc` on the server's stdin); after the phase the
 * growth of every heap space's used bytes is what the phase allocated, exactly,
 * as long as no collection ran inside it, which the server's GC observer
 * confirms (a phase with a collection is refused). Node 20 has no
 * `total_allocated_bytes` in v8.getHeapStatistics(), so this is the count
 * that works on both supported Node versions. Allocations V8 optimizes away
 * (escape analysis) do not count, as they cost nothing; that is why the
 * warm-up comes first.
 *
 * Collections: a second server process with Node's default heap settings
 * counts the scavenges and full collections over 10 phases' worth of echoes.
 */
import { execFile } from 'node:child_process'
import { setTimeout as sleep } from 'node:timers/promises'
import { Packr } from 'msgpackr'
import WebSocket from 'ws'
import { buildServers, serverScript } from './built.js'
import { ServerProcess } from './server-process.js'

type ServerName = 'signalr-json' | 'signalr-msgpack' | 'ws'
const SERVERS: ServerName[] = ['signalr-json', 'signalr-msgpack', 'ws']

const RS = 0x1e // record separator
const PAYLOAD = 'the quick brown fox jumps over the lazy dog'
/** Echoes before anything is measured, so the hot paths are optimized first. */
const WARM = 6000
/** The young generation of the bytes server, in MB: room for a whole phase without a scavenge. */
const SEMI_SPACE_MB = 64

const packr = new Packr({ useRecords: false, variableMapSize: true })

interface Cli { n: number, reps: number, conns: number, servers: ServerName[] }

function parseCli (args: string[]): Cli {
  const cli: Cli = { n: 4000, reps: 5, conns: 8, servers: SERVERS }
  for (const arg of args) {
    const [key, value = ''] = arg.replace(/^--/, '').split('=')
    if (key === 'servers') {
      const names = value.split(',') as ServerName[]
      for (const name of names) if (!SERVERS.includes(name)) throw new Error(`unknown server ${name} (known: ${SERVERS.join(', ')})`)
      cli.servers = names
    } else if (key === 'n' || key === 'reps' || key === 'conns') {
      const n = Number(value)
      if (!Number.isInteger(n) || n < 1) throw new Error(`--${key} must be a positive integer`)
      cli[key] = n
    } else {
      throw new Error(`unknown argument ${arg} (known: --n, --reps, --conns, --servers)`)
    }
  }
  return cli
}

// ---------------------------------------------------------------- the client side

/** One connection echoing one message at a time; `replies` counts the answers. */
class EchoClient {
  private waiting: (() => void) | null = null
  private left = 0

  private constructor (private readonly ws: WebSocket, private readonly request: string | Buffer) {}

  static async open (server: ServerName, port: number): Promise<EchoClient> {
    if (server === 'ws') {
      const ws = new WebSocket(`ws://127.0.0.1:${port}/`, { perMessageDeflate: false })
      await new Promise((resolve, reject) => { ws.once('open', resolve); ws.once('error', reject) })
      const client = new EchoClient(ws, 'e' + PAYLOAD)
      ws.on('message', () => client.replied(1))
      return client
    }
    const binary = server === 'signalr-msgpack'
    const res = await fetch(`http://127.0.0.1:${port}/hub/negotiate?negotiateVersion=1`, { method: 'POST' })
    const { connectionToken } = await res.json() as { connectionToken: string }
    const ws = new WebSocket(`ws://127.0.0.1:${port}/hub?id=${encodeURIComponent(connectionToken)}`, { perMessageDeflate: false })
    await new Promise((resolve, reject) => { ws.once('open', resolve); ws.once('error', reject) })
    // The invocation id is the same every time: one call at a time per connection.
    const request = binary
      ? lengthPrefixed(packr.pack([1, {}, '1', 'Echo', [PAYLOAD]]))
      : `{"type":1,"invocationId":"1","target":"Echo","arguments":[${JSON.stringify(PAYLOAD)}]}\u001e`
    const client = new EchoClient(ws, request)
    let handshaken = false
    const handshake = new Promise<void>((resolve) => {
      ws.on('message', (data: Buffer) => {
        let from = 0
        if (!handshaken) {
          from = data.indexOf(RS) + 1
          handshaken = true
          resolve()
        }
        client.replied(binary ? countBinary(data, from) : countText(data, from))
      })
    })
    ws.send(`{"protocol":"${binary ? 'messagepack' : 'json'}","version":1}\u001e`)
    await handshake
    return client
  }

  /** Resolves after `n` round trips, one at a time. */
  run (n: number): Promise<void> {
    return new Promise((resolve) => {
      this.left = n
      this.waiting = resolve
      this.ws.send(this.request)
    })
  }

  private replied (count: number): void {
    for (let i = 0; i < count; i++) {
      if (this.waiting === null) return
      if (--this.left === 0) {
        const done = this.waiting
        this.waiting = null
        done()
        return
      }
      this.ws.send(this.request)
    }
  }

  close (): void {
    this.ws.terminate()
  }
}

function lengthPrefixed (body: Buffer): Buffer {
  const prefix: number[] = []
  let n = body.length
  do {
    prefix.push((n & 0x7f) | (n > 0x7f ? 0x80 : 0))
    n >>>= 7
  } while (n > 0)
  return Buffer.concat([Buffer.from(prefix), body])
}

/** JSON records in a frame, pings left out. */
function countText (data: Buffer, from: number): number {
  let count = 0
  for (const record of data.toString('utf8', from).split('\u001e')) {
    if (record !== '' && record !== '{"type":6}') count++
  }
  return count
}

/** MessagePack messages in a frame, pings ([6]) left out. */
function countBinary (data: Buffer, from: number): number {
  let count = 0
  let pos = from
  while (pos < data.length) {
    let length = 0
    let shift = 0
    let byte
    do {
      byte = data[pos++]!
      length += (byte & 0x7f) * 2 ** shift
      shift += 7
    } while ((byte & 0x80) !== 0)
    if (!(length === 2 && data[pos] === 0x91 && data[pos + 1] === 6)) count++
    pos += length
  }
  return count
}

async function echoes (clients: EchoClient[], n: number): Promise<void> {
  const each = Math.ceil(n / clients.length)
  await Promise.all(clients.map((c) => c.run(each)))
}

// ---------------------------------------------------------------- the server process

interface Alloc { used: number, minor: number, major: number }

class Server extends ServerProcess {
  static async start (name: ServerName, nodeFlags: string[]): Promise<{ server: Server, port: number }> {
    const server = new Server(execFile(process.execPath, [...nodeFlags, '--expose-gc', serverScript(name), '0']))
    const port = Number((await server.line(/^READY (\d+)$/))[1])
    return { server, port }
  }

  async alloc (): Promise<Alloc> {
    const reply = this.line(/^ALLOC (\d+) (\d+) (\d+)$/)
    this.child.stdin!.write('alloc\n')
    const m = await reply
    return { used: Number(m[1]), minor: Number(m[2]), major: Number(m[3]) }
  }
}

async function withServer<T> (name: ServerName, flags: string[], conns: number, body: (server: Server, clients: EchoClient[]) => Promise<T>): Promise<T> {
  const { server, port } = await Server.start(name, flags)
  const clients: EchoClient[] = []
  try {
    for (let i = 0; i < conns; i++) clients.push(await EchoClient.open(name, port))
    await echoes(clients, WARM)
    return await body(server, clients)
  } finally {
    for (const c of clients) c.close()
    await server.stop()
  }
}

/** Bytes allocated per echo, one figure per phase; phases with a collection inside are repeated. */
async function bytesPerEcho (name: ServerName, cli: Cli): Promise<number[]> {
  const flags = [`--min-semi-space-size=${SEMI_SPACE_MB}`, `--max-semi-space-size=${SEMI_SPACE_MB}`]
  return await withServer(name, flags, cli.conns, async (server, clients) => {
    const figures: number[] = []
    for (let attempt = 0; figures.length < cli.reps; attempt++) {
      if (attempt >= cli.reps * 3) throw new Error(`${name}: collections ran inside most phases; lower --n`)
      await server.minorGc()
      // Background work the scavenge started (sweeping, compiling) settles outside the phase.
      await sleep(200)
      const before = await server.alloc()
      await echoes(clients, cli.n)
      const after = await server.alloc()
      if (after.minor + after.major > 0) continue
      figures.push((after.used - before.used) / (Math.ceil(cli.n / cli.conns) * cli.conns))
    }
    return figures
  })
}

/** Collections over 10 phases' worth of echoes, with Node's default heap settings. */
async function collections (name: ServerName, cli: Cli): Promise<{ echoes: number, minor: number, major: number }> {
  return await withServer(name, [], cli.conns, async (server, clients) => {
    const n = Math.ceil(cli.n * 10 / cli.conns) * cli.conns
    await server.alloc()
    await echoes(clients, n)
    const counted = await server.alloc()
    return { echoes: n, minor: counted.minor, major: counted.major }
  })
}

function median (values: number[]): number {
  const sorted = [...values].sort((a, b) => a - b)
  const mid = sorted.length >> 1
  return sorted.length % 2 === 1 ? sorted[mid]! : (sorted[mid - 1]! + sorted[mid]!) / 2
}

async function main (): Promise<void> {
  const cli = parseCli(process.argv.slice(2))
  buildServers()
  const rows = [
    '| server | bytes allocated per echo (median) | spread over phases | scavenges per 10,000 echoes | full GCs per 10,000 echoes |',
    '| --- | ---: | ---: | ---: | ---: |'
  ]
  for (const name of cli.servers) {
    const bytes = await bytesPerEcho(name, cli)
    const gc = await collections(name, cli)
    const mid = median(bytes)
    const spread = (Math.max(...bytes) - Math.min(...bytes)) / mid
    const per10k = (count: number): string => (count * 10_000 / gc.echoes).toFixed(1)
    rows.push(`| ${name} | ${Math.round(mid).toLocaleString('en-US')} | ${(spread * 100).toFixed(1)} % | ${per10k(gc.minor)} | ${per10k(gc.major)} |`)
  }
  process.stdout.write(`${rows.join('\n')}\n\n${cli.reps} phases of ${cli.n} echoes over ${cli.conns} connections; node ${process.version}\n`)
}

main().then(
  () => process.exit(0),
  (err: unknown) => {
    process.stderr.write(`bench:alloc: ${err instanceof Error ? err.message : String(err)}\n`)
    process.exit(1)
  }
)
