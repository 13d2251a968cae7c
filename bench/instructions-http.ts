/**
 * `npm run bench:instructions -- --http`: instructions per operation over
 * HTTP long polling, for fastify-signalr (JSON, bench/servers/signalr-lp-json.ts)
 * and for Socket.IO 4's polling transport (bench/servers/socketio-polling.ts),
 * each server under callgrind exactly as in bench/instructions.ts (--jitless,
 * counters zeroed and dumped around each phase). The clients are the lean
 * ones of bench/http-links.ts that the `http-*` scenarios of `npm run bench` use.
 *
 * Operations: an echo round trip (one connection, one call at a time: its
 * POST, the answer to the waiting poll, the next poll), and a broadcast
 * delivery (one connection broadcasts to BROADCAST_CONNS connections, all
 * of them polling; counted per message delivered, the sender's POST
 * included). After the last operation of a phase the driver waits
 * TAIL_MS before the dump, so the polls that follow it are counted in every
 * phase alike rather than racing the dump.
 */
import { setTimeout as sleep } from 'node:timers/promises'
import { buildServers } from './built.js'
import { fail, int, median, Server } from './callgrind.js'
import { closeHttpLinks, enginePollingLink, longPollingLink, type Link } from './http-links.js'

const RS = '\u001e'
const ECHO_PAYLOAD = 'the quick brown fox jumps over the lazy dog'
const BROADCAST_CONNS = 20
const MEASURE = { echo: 200, broadcast: 20 }
const WARM = { echo: 1500, broadcast: 100 }
const TAIL_MS = 500

/** One connection of either server: its records (SignalR) or packets (engine.io) arrive on `onRecord`. */
class HttpConn {
  link!: Link
  closing = false
  onRecord: (record: string) => void = () => {}

  /** Resolves when `count` records have arrived. */
  expect (count: number): Promise<void> {
    return new Promise((resolve) => {
      let seen = 0
      this.onRecord = () => { if (++seen === count) resolve() }
    })
  }

  events (opened: () => void, receive: (data: Buffer | string) => void): Parameters<typeof longPollingLink>[2] {
    return {
      open: opened,
      message: receive,
      error: (err) => { if (!this.closing) fail(err) },
      close: (why) => { if (!this.closing) fail(new Error(`the server ended a connection: ${why}`)) }
    }
  }
}

/** What differs between the two servers: how a connection opens and what an echo and a broadcast look like. */
interface Flavour {
  script: string
  label: string
  open (port: number): Promise<HttpConn>
  echo (id: number): string
  broadcast: string
}

/** A SignalR JSON long-polling server: negotiate, then the handshake over the first POST. */
function signalrLp (script: string, label: string): Flavour {
  return {
    script,
    label,
    async open (port) {
      const res = await fetch(`http://127.0.0.1:${port}/hub/negotiate?negotiateVersion=1`, { method: 'POST' })
      if (res.status !== 200) throw new Error(`negotiate: HTTP ${res.status}`)
      const { connectionToken } = await res.json() as { connectionToken: string }
      const conn = new HttpConn()
      await new Promise<void>((resolve) => {
        conn.onRecord = (record) => { if (record === '{}') resolve(); else fail(new Error(`handshake refused: ${record}`)) }
        conn.link = longPollingLink(port, connectionToken, conn.events(
          () => conn.link.send(`{"protocol":"json","version":1}${RS}`),
          (data) => { for (const record of data.toString().split(RS)) if (record !== '') conn.onRecord(record) }))
      })
      return conn
    },
    echo: (id) => `{"type":1,"invocationId":"${id}","target":"Echo","arguments":[${JSON.stringify(ECHO_PAYLOAD)}]}${RS}`,
    broadcast: `{"type":1,"target":"Broadcast","arguments":[${JSON.stringify(ECHO_PAYLOAD)}]}${RS}`
  }
}

const SIGNALR_LP = signalrLp('signalr-lp-json', 'fastify-signalr long polling (JSON)')
/** The floors of bench/servers/lp-floor.ts: the same wire with no SignalR server behind it. */
const FLOOR_FASTIFY = signalrLp('lp-floor-fastify', 'floor: minimal LP on Fastify routes')
const FLOOR_HTTP = signalrLp('lp-floor-http', "floor: minimal LP on Node's HTTP server")

const SOCKETIO_POLLING: Flavour = {
  script: 'socketio-polling',
  label: 'Socket.IO 4 polling',
  async open (port) {
    const conn = new HttpConn()
    await new Promise<void>((resolve) => {
      let ready = false
      conn.link = enginePollingLink(port, conn.events(() => {}, (data) => {
        const packet = data.toString()
        if (packet === '2') conn.link.send('3') // engine.io ping: not an operation
        else if (packet.startsWith('0')) conn.link.send('40') // open: connect the main namespace
        else if (!ready && packet.startsWith('40')) {
          ready = true
          resolve()
        } else conn.onRecord(packet)
      }))
    })
    return conn
  },
  echo: (id) => `42${id}["echo",${JSON.stringify(ECHO_PAYLOAD)}]`,
  broadcast: `42["broadcast",${JSON.stringify(ECHO_PAYLOAD)}]`
}

async function echoes (flavour: Flavour, conn: HttpConn, n: number, first: number): Promise<void> {
  for (let i = first; i < first + n; i++) {
    const done = conn.expect(1)
    conn.link.send(flavour.echo(i))
    await done
  }
}

async function broadcasts (flavour: Flavour, conns: HttpConn[], n: number): Promise<number> {
  for (let i = 0; i < n; i++) {
    const all = Promise.all(conns.map((c) => c.expect(1)))
    conns[0]!.link.send(flavour.broadcast)
    await all
  }
  return n * conns.length
}

async function measureFlavour (flavour: Flavour, reps: number): Promise<{ echo: number[], broadcast: number[] }> {
  const server = Server.start(flavour.script)
  const conns: HttpConn[] = []
  try {
    const port = Number((await server.line(/^READY (\d+)$/, 300_000))[1])
    for (let i = 0; i < BROADCAST_CONNS; i++) conns.push(await flavour.open(port))
    let id = 1
    await echoes(flavour, conns[0]!, WARM.echo, id)
    id += WARM.echo
    await broadcasts(flavour, conns, WARM.broadcast)
    await server.control('-i', 'on')
    const out = { echo: [] as number[], broadcast: [] as number[] }
    for (let rep = 0; rep < reps; rep++) {
      await server.startPhase()
      await echoes(flavour, conns[0]!, MEASURE.echo, id)
      id += MEASURE.echo
      await sleep(TAIL_MS)
      out.echo.push(await server.endPhase() / MEASURE.echo)

      await server.startPhase()
      const deliveries = await broadcasts(flavour, conns, MEASURE.broadcast)
      await sleep(TAIL_MS)
      out.broadcast.push(await server.endPhase() / deliveries)
    }
    return out
  } finally {
    for (const c of conns) {
      c.closing = true
      c.link.terminate()
    }
    closeHttpLinks()
    await server.stop()
  }
}

/** --http: the table of the servers; `only` limits it to those whose script starts so (`signalr`, `socketio`, `lp-floor`). */
export async function httpComparison (reps: number, only: string | undefined): Promise<number> {
  buildServers()
  const flavours = [SIGNALR_LP, SOCKETIO_POLLING, FLOOR_FASTIFY, FLOOR_HTTP].filter((f) => only === undefined || f.script.startsWith(only))
  const rows = ['| server | echo round trip (median) | spread | broadcast delivery, ' + BROADCAST_CONNS + ' conns (median) | spread |',
    '| --- | ---: | ---: | ---: | ---: |']
  const spread = (values: number[]): string => `${((Math.max(...values) - Math.min(...values)) / median(values) * 100).toFixed(1)} %`
  for (const flavour of flavours) {
    const m = await measureFlavour(flavour, reps)
    process.stderr.write(`${flavour.label}: echo ${m.echo.map(int).join(', ')}; broadcast ${m.broadcast.map(int).join(', ')}\n`)
    rows.push(`| ${flavour.label} | ${int(median(m.echo))} | ${spread(m.echo)} | ${int(median(m.broadcast))} | ${spread(m.broadcast)} |`)
  }
  process.stdout.write(`${rows.join('\n')}\n\n${reps} repetitions; instructions per operation, server under callgrind; node ${process.version}\n`)
  return 0
}
