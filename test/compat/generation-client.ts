/**
 * Child process of generations.test.ts: loads ONE client generation (and its
 * MessagePack protocol), runs the hub steps over every transport × protocol
 * it supports against the parent's server, and prints one line
 * `REPORT <json>` (a GenerationReport). Usage: generation-client.ts NAME HUB_URL
 */
import Module, { createRequire } from 'node:module'
import { installBrowserGlobals } from './browser-globals.js'
import { cellsOf, GENERATIONS, type Cell, type CellReport, type GenerationReport } from './generations.js'

/** The part of every generation's API the steps use (1.0 to 10 agree on it). */
interface StreamSubscriber { next (item: unknown): void, complete (): void, error (err: Error): void }
interface HubConnectionLike {
  start (): Promise<void>
  stop (): Promise<void>
  invoke (method: string, ...args: unknown[]): Promise<unknown>
  send (method: string, ...args: unknown[]): Promise<void>
  stream (method: string, ...args: unknown[]): { subscribe (subscriber: StreamSubscriber): unknown }
  on (method: string, handler: (...args: unknown[]) => void): void
  onclose (callback: (error?: Error) => void): void
}
interface BuilderLike {
  withUrl (url: string, options: { transport: number }): BuilderLike
  withHubProtocol (protocol: unknown): BuilderLike
  configureLogging (level: number): BuilderLike
  build (): HubConnectionLike
}
interface ClientModule {
  HubConnectionBuilder: new () => BuilderLike
  HttpTransportType: Record<string, number>
  LogLevel: Record<string, number>
}
interface ProtocolModule { MessagePackHubProtocol: new () => unknown }

/** A bound on each step, so that a hang names its step instead of ending at tap's timeout. */
const STEP_TIMEOUT_MS = 15_000

const [name, hubUrl] = process.argv.slice(2)
const generation = GENERATIONS.find((g) => g.name === name)
if (generation === undefined || hubUrl === undefined) throw new Error(`usage: generation-client.ts NAME HUB_URL (got ${String(name)})`)

const require = createRequire(import.meta.url)

// A protocol package requires its client by the real package name, which here
// names generation 10 (or nothing, for @aspnet/signalr): in this process that
// name means the generation under test.
let messagepackPeer: string | undefined
const moduleInternals = Module as unknown as { _resolveFilename (request: string, ...rest: unknown[]): string }
const resolveFilename = moduleInternals._resolveFilename
moduleInternals._resolveFilename = function (request: string, ...rest: unknown[]): string {
  if (request !== generation.peerName) return resolveFilename.call(this, request, ...rest)
  messagepackPeer = resolveFilename.call(this, generation.client, ...rest)
  return messagepackPeer
}

if (generation.browserGlobals === true) installBrowserGlobals()
if (generation.selfGlobal === true) (globalThis as Record<string, unknown>).self ??= globalThis
const signalR = require(generation.client) as ClientModule
const protocols = generation.messagepack === undefined ? undefined : require(generation.messagepack) as ProtocolModule

function within<T> (step: string, promise: Promise<T>): Promise<T> {
  let timer: NodeJS.Timeout | undefined
  const timeout = new Promise<never>((_resolve, reject) => {
    timer = setTimeout(() => { reject(new Error(`no outcome within ${STEP_TIMEOUT_MS} ms`)) }, STEP_TIMEOUT_MS)
  })
  return Promise.race([promise, timeout]).finally(() => { clearTimeout(timer) })
}

function streamItems (connection: HubConnectionLike, method: string, ...args: unknown[]): Promise<unknown[]> {
  return new Promise((resolve, reject) => {
    const items: unknown[] = []
    connection.stream(method, ...args).subscribe({
      next: (item) => { items.push(item) },
      complete: () => { resolve(items) },
      error: reject
    })
  })
}

async function runCell (cell: Cell): Promise<CellReport> {
  let builder = new signalR.HubConnectionBuilder()
    .withUrl(hubUrl!, { transport: signalR.HttpTransportType[cell.transport]! })
    .configureLogging(signalR.LogLevel.None!)
  if (cell.protocol === 'messagepack') builder = builder.withHubProtocol(new protocols!.MessagePackHubProtocol())
  const connection = builder.build()
  const closed = new Promise<Error | undefined>((resolve) => { connection.onclose(resolve) })
  const echoed = new Promise<unknown[]>((resolve) => { connection.on('Echoed', (...args) => { resolve(args) }) })

  const report: CellReport = { ...cell }
  let step = 'start'
  try {
    await within(step, connection.start())
    step = 'servedOver'
    report.servedOver = await within(step, connection.invoke('Transport')) as string
    step = 'invoke'
    report.invoke = await within(step, connection.invoke('Add', 40, 2))
    step = 'send'
    await within(step, connection.send('Echo', 'hello'))
    step = 'message'
    report.message = await within(step, echoed)
    step = 'stream'
    report.stream = await within(step, streamItems(connection, 'Count', 3))
    step = 'hubError'
    report.hubError = await within(step, connection.invoke('Fail').then(() => null, (err: Error) => err.message))
    step = 'stop'
    await within(step, connection.stop())
    step = 'onclose'
    report.closeError = (await within(step, closed))?.message ?? null
  } catch (err) {
    report.failed = { step, message: (err as Error).message }
    await connection.stop().catch(() => {})
  }
  return report
}

const report: GenerationReport = {
  generation: generation.name,
  clientVersion: (require(`${generation.client}/package.json`) as { version: string }).version,
  cells: []
}
// One cell after another: each is a fresh connection, so nothing carries over.
for (const cell of cellsOf(generation)) report.cells.push(await runCell(cell))
if (messagepackPeer !== undefined) report.messagepackPeer = messagepackPeer
process.stdout.write(`REPORT ${JSON.stringify(report)}\n`)
// Old clients leave timers (keep-alive, long-poll aborts) behind; the report is out.
process.exit(0)
