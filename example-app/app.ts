/**
 * Builds the example chat app without listening, so tests can reuse it
 * (server.ts listens). The three static files are read once at build time
 * with node:fs: the example needs no static-file plugin.
 */
import { readFile } from 'node:fs/promises'
import { createRequire } from 'node:module'
import Fastify, { type FastifyInstance } from 'fastify'
import signalr from '../lib/index.js'
import { chat } from './hubs/chat.js'

export interface BuildOptions {
  /** Turn on Fastify's pino logger. Default: false. */
  logger?: boolean
}

const JS = 'text/javascript; charset=utf-8'
const HTML = 'text/html; charset=utf-8'

export async function build (opts: BuildOptions = {}): Promise<FastifyInstance> {
  // The official client's browser bundle, straight from node_modules: no CDN.
  const signalrBrowserPath = createRequire(import.meta.url)
    .resolve('@microsoft/signalr/dist/browser/signalr.js')

  const [indexHtml, appJs, signalrJs] = await Promise.all([
    readFile(new URL('./public/index.html', import.meta.url)),
    readFile(new URL('./public/app.js', import.meta.url)),
    readFile(signalrBrowserPath)
  ])

  const app = Fastify({ logger: opts.logger ?? false })
  // The hub explorer and live monitor at /signalr; without `authorize` it
  // answers only requests from this machine.
  await app.register(signalr, { explorer: { path: '/signalr' } })

  app.mapHub('/chathub', chat)

  app.get('/', (_request, reply) => reply.type(HTML).send(indexHtml))
  app.get('/app.js', (_request, reply) => reply.type(JS).send(appJs))
  app.get('/signalr.js', (_request, reply) => reply.type(JS).send(signalrJs))

  return app
}
