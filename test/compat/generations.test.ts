/**
 * Every client generation against one server: @aspnet/signalr 1.0 and 1.1
 * (negotiate version 0) and @microsoft/signalr 3.1 to 10, each over every
 * transport and protocol it supports, in a child process of its own (each
 * loads its own client and MessagePack protocol package; see
 * generation-client.ts). A failure names generation, transport and protocol.
 */
import { spawn } from 'node:child_process'
import { fileURLToPath } from 'node:url'
import t from 'tap'
import { z } from 'zod'
import { defineHub, HubError } from '../../lib/index.js'
import { startApp } from '../helpers/app.js'
import { cellsOf, GENERATIONS, type Generation, type GenerationReport } from './generations.js'

const ROOT = fileURLToPath(new URL('../..', import.meta.url))
const CHILD = 'test/compat/generation-client.ts'
/** Children run two at a time: the machine is small and each one compiles on start. */
const PARALLEL = 2
/** A bound on one child (it bounds each of its own steps well below this). */
const CHILD_TIMEOUT_MS = 90_000

t.setTimeout(300_000)

const hub = defineHub({
  methods: {
    Transport: { args: [], handler: (hub) => hub.transport },
    Add: { args: [z.number(), z.number()], handler: (_hub, a, b) => a + b },
    Echo: { args: [z.string()], async handler (hub, text) { await hub.clients.caller.send('Echoed', text) } },
    Count: {
      args: [z.number().int().min(0)],
      stream: true,
      * handler (_hub, n) { for (let i = 0; i < n; i++) yield i }
    },
    Fail: { args: [], handler () { throw new HubError('nope') } }
  }
})

/** negotiateVersion of every negotiate request ('none' when absent: version 0). */
const negotiateVersions: string[] = []
const { baseUrl } = await startApp(t, (app) => {
  app.addHook('onRequest', async (request) => {
    if (request.url.startsWith('/hub/negotiate')) {
      negotiateVersions.push((request.query as Record<string, string | undefined>).negotiateVersion ?? 'none')
    }
  })
  app.mapHub('/hub', hub)
})

function runChild (generation: Generation): Promise<GenerationReport> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, ['--import', 'tsx', CHILD, generation.name, `${baseUrl}/hub`], {
      cwd: ROOT, stdio: ['ignore', 'pipe', 'pipe']
    })
    let stdout = ''
    let stderr = ''
    child.stdout.setEncoding('utf8').on('data', (chunk: string) => { stdout += chunk })
    child.stderr.setEncoding('utf8').on('data', (chunk: string) => { stderr = (stderr + chunk).slice(-4000) })
    const timer = setTimeout(() => { child.kill('SIGKILL') }, CHILD_TIMEOUT_MS)
    child.once('exit', (code, signal) => {
      clearTimeout(timer)
      const line = /^REPORT (.*)$/m.exec(stdout)
      if (code === 0 && line !== null) resolve(JSON.parse(line[1]!) as GenerationReport)
      else reject(new Error(`generation ${generation.name}: child exited (code ${code}, signal ${signal}) without a report; stderr: ${stderr}`))
    })
  })
}

/** Runs the children PARALLEL at a time, keeping GENERATIONS' order in the result. */
async function runAll (): Promise<Array<GenerationReport | Error>> {
  const results: Array<GenerationReport | Error> = []
  let next = 0
  const worker = async (): Promise<void> => {
    while (next < GENERATIONS.length) {
      const index = next++
      results[index] = await runChild(GENERATIONS[index]!).catch((err: Error) => err)
    }
  }
  await Promise.all(Array.from({ length: PARALLEL }, worker))
  return results
}

const reports = await runAll()

t.test('1.0 and 1.1 negotiate with version 0, the others with version 1', async (t) => {
  const count = (versions: readonly string[], version: string): number => versions.filter((v) => v === version).length
  const old = GENERATIONS.filter((g) => g.peerName === '@aspnet/signalr').flatMap(cellsOf).length
  const current = GENERATIONS.filter((g) => g.peerName === '@microsoft/signalr').flatMap(cellsOf).length
  t.same({ none: count(negotiateVersions, 'none'), 1: count(negotiateVersions, '1'), all: negotiateVersions.length },
    { none: old, 1: current, all: old + current })
})

GENERATIONS.forEach((generation, index) => {
  t.test(`client ${generation.name}`, async (t) => {
    const report = reports[index]!
    if (report instanceof Error) throw report
    t.match(report.clientVersion, new RegExp(`^${generation.name.replace('.', '\\.')}\\.`), 'the child loaded this generation')
    if (generation.messagepack !== undefined) {
      t.match(report.messagepackPeer, `/node_modules/${generation.client}/`, 'its MessagePack package runs on the same generation')
    }
    const expectedCells = cellsOf(generation).map((cell) => `${cell.transport}/${cell.protocol}`)
    t.same(report.cells.map((cell) => `${cell.transport}/${cell.protocol}`), expectedCells, 'every cell ran')
    for (const cell of report.cells) {
      t.test(`${cell.transport}/${cell.protocol}`, async (t) => {
        t.equal(cell.failed, undefined, 'no step failed')
        t.equal(cell.servedOver, cell.transport, 'the server serves it over that transport')
        t.equal(cell.invoke, 42, 'invoke returns the result')
        t.same(cell.message, ['hello'], 'send reaches the hub, whose message reaches the client')
        t.same(cell.stream, [0, 1, 2], 'a server-to-client stream delivers every item')
        t.equal(cell.hubError, "An unexpected error occurred invoking 'Fail' on the server. HubException: nope", 'a HubError reaches the client')
        t.equal(cell.closeError, null, 'stop() ends with onclose and no error')
      })
    }
  })
})
