import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify'
import type { HubConnection } from '../connection/connection.js'
import type { ConnectionStore } from '../connection/connection-store.js'
import type { AsyncApiHub } from '../hub/asyncapi.js'
import type { HubRuntime } from '../hub/hub-runtime.js'
import type { AnyHubDefinition } from '../hub/types.js'
import { loadExplorerAssets } from './assets.js'
import { describeHubs } from './describe.js'
import { isLoopback } from './loopback.js'
import { Monitor } from './monitor.js'

/** The `explorer` plugin option. */
export interface ExplorerOptions {
  /** Where the page is served, e.g. `/signalr`; its data routes and monitor hub live below it. */
  path: string
  /**
   * Who may open the explorer, its data routes and its monitor hub. Without it
   * only requests from this machine (loopback: 127.0.0.0/8, ::1) are answered.
   * @example authorize: (request) => request.user?.role === 'admin'
   */
  authorize?: (request: FastifyRequest) => boolean | Promise<boolean>
}

export interface ExplorerDeps {
  readonly store: ConnectionStore<HubConnection>
  readonly runtimes: () => Iterable<HubRuntime>
  readonly hubs: () => readonly AsyncApiHub[]
  readonly scaled: boolean
  /** Keeps the monitor's own hub out of the hub list and the AsyncAPI document. */
  readonly hide: (hub: AnyHubDefinition) => void
}

// Everything is served from this origin; nothing inline, nothing from a CDN.
const CSP = "default-src 'none'; script-src 'self'; style-src 'self'; connect-src 'self'; img-src 'self' data:; " +
  "base-uri 'none'; form-action 'none'; frame-ancestors 'none'"

function escapeAttribute (value: string): string {
  return value.replace(/&/g, '&amp;').replace(/"/g, '&quot;').replace(/</g, '&lt;')
}

/**
 * Serves the hub explorer and the live monitor under `options.path`, in a
 * scope of its own whose onRequest hook applies `authorize` (or the loopback
 * rule) to the page, its assets, its data route and its monitor hub alike.
 */
export async function registerExplorer (fastify: FastifyInstance, options: ExplorerOptions, deps: ExplorerDeps): Promise<void> {
  const assets = await loadExplorerAssets()
  const base = options.path.replace(/\/+$/, '')
  const monitor = new Monitor(deps.store, deps.runtimes, deps.scaled)
  deps.hide(monitor.hub)
  const authorize = options.authorize

  fastify.addHook('preClose', async () => { monitor.stop() })

  await fastify.register(async (scope) => {
    scope.addHook('onRequest', async (request: FastifyRequest, reply: FastifyReply) => {
      // request.ip is the socket's address unless the app trusts a proxy (trustProxy).
      const allowed = authorize === undefined ? isLoopback(request.ip) : await authorize(request)
      if (allowed !== true) {
        await reply.code(403).type('text/plain; charset=utf-8').send('The SignalR explorer is not available to this client.')
        return reply
      }
    })
    scope.addHook('onSend', async (_request, reply) => {
      reply.header('content-security-policy', CSP)
      reply.header('x-content-type-options', 'nosniff')
      reply.header('cache-control', 'no-store')
    })

    const html = assets.html
      .replace('{{base}}', escapeAttribute(base))
      .replace('{{messagepack}}', assets.messagepack
        ? `<script src="${escapeAttribute(base)}/assets/signalr-protocol-msgpack.min.js"></script>`
        : '')
      .replaceAll('{{assets}}', escapeAttribute(`${base}/assets`))
    const page = (_request: FastifyRequest, reply: FastifyReply): FastifyReply => reply.type('text/html; charset=utf-8').send(html)
    scope.get(base === '' ? '/' : base, page)
    if (base !== '') scope.get(`${base}/`, page)
    scope.get<{ Params: { file: string } }>(`${base}/assets/:file`, (request, reply) => {
      const asset = assets.files.get(request.params.file)
      if (asset === undefined) return reply.code(404).type('text/plain; charset=utf-8').send('Not found')
      return reply.type(asset.type).send(asset.body)
    })
    scope.get(`${base}/api/hubs`, () => ({
      hubs: describeHubs(deps.hubs()),
      messagepack: assets.messagepack,
      scaled: deps.scaled
    }))
    scope.mapHub(`${base}/monitor`, monitor.hub, { protocols: ['json'] })
    const context = fastify.signalr.hubContext(monitor.hub)
    monitor.broadcast = (snapshot) => context.clients.all.send('Snapshot', snapshot)
  })
}
