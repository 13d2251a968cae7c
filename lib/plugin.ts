import websocket from '@fastify/websocket'
import type { FastifyInstance, FastifyPluginAsync } from 'fastify'
import fp from 'fastify-plugin'
import { ConnectionStore } from './connection/connection-store.js'
import type { HubConnection } from './connection/connection.js'
import { TokenSigner } from './connection/ids.js'
import { codes, describeValue } from './errors.js'
import type { RouteContext } from './http/route-context.js'
import { registerHubRoutes } from './http/routes.js'
import { methodTableOf } from './hub/define-hub.js'
import type { HubContext } from './hub/hub-context.js'
import { HubRuntime } from './hub/hub-runtime.js'
import { buildAsyncApi, type AsyncApiHub, type AsyncApiInfo } from './hub/asyncapi.js'
import { HookRegistry, isHookName, type HookName, type HubHooks } from './hub/hooks.js'
import type { AnyHubDefinition, HubDefinition } from './hub/types.js'
import type { Backplane } from './backplane/backplane.js'
import type { HubLifetimeManager } from './lifetime/lifetime-manager.js'
import { LocalLifetimeManager } from './lifetime/local.js'
import type { BackplaneRouting } from './lifetime/channels.js'
import { ScaledLifetimeManager } from './lifetime/scaled.js'
import {
  resolveHubOptions, resolvePluginOptions, type HubOptions, type TransportName
} from './options.js'
import { resolveProtocols } from './protocol/index.js'
import { loadTelemetry, type BackplaneCounters, type TelemetryOptions } from './telemetry.js'
import { onWebSocketError } from './transports/websocket-upgrade.js'
import type { ProtocolOption } from './protocol/index.js'
import { NETWORK_TRANSPORT_NAMES } from './transports/registry.js'
import { registerExplorer, type ExplorerOptions } from './explorer/explorer.js'
import { injectHub, type InjectOptions } from './inject.js'
import type { HubConnection as ClientConnection } from '@microsoft/signalr'

/** Options of `app.register(signalr, options)` (AddSignalR + HubOptions). */
export interface SignalRPluginOptions extends HubOptions {
  /** Scale-out backplane (`redisBackplane(...)`); in-memory when absent. */
  backplane?: Backplane
  /** Shared by servers so a WebSocket may connect to any of them (scale-out). */
  connectionTokenSecret?: string
  /**
   * OpenTelemetry providers for metrics and traces, or `false` for none. By
   * default the global providers are used when `@opentelemetry/api` is
   * installed and an SDK is registered; otherwise nothing is measured.
   */
  telemetry?: TelemetryOptions | false
  /** Serves the AsyncAPI document of the mapped hubs at `path` (GET). */
  asyncapi?: { path: string, info?: AsyncApiInfo }
  /**
   * Serves the hub explorer and live monitor page at `path` (off by default).
   * Without `authorize`, only loopback requests may open it.
   * @example explorer: { path: '/signalr', authorize: (request) => request.user?.role === 'admin' }
   */
  explorer?: ExplorerOptions
}

/** Per-hub overrides for `mapHub(path, hub, options)`. */
export interface MapHubOptions extends HubOptions {
  transports?: TransportName[]
  protocols?: ProtocolOption[]
}

/** `app.signalr`. */
export interface SignalRDecorator {
  /**
   * Clients and groups of a mapped hub, for code outside hub methods (IHubContext).
   * @example await app.signalr.hubContext(chat).clients.all.send('ReceiveMessage', 'system', 'hi')
   */
  hubContext<M, C>(hub: HubDefinition<M, C>): HubContext<C>
  /**
   * Adds a hook for every hub of this instance (SignalR's global hub filters).
   * @example app.signalr.addHook('afterInvocation', (e) => metrics.observe(e.method, e.durationMs))
   */
  addHook<K extends HookName>(name: K, hook: NonNullable<HubHooks[K]>): void
  /**
   * An AsyncAPI 3.0 document of every mapped hub, from the zod schemas.
   * @example app.get('/asyncapi.json', () => app.signalr.asyncapi({ title: 'Chat' }))
   */
  asyncapi (info?: AsyncApiInfo): Record<string, unknown>
  /**
   * Connects an official `@microsoft/signalr` client to the hub at `path` in
   * process, through `app.inject` (the route's hooks run) and an in-memory
   * transport: no socket, no port. Resolves once started. The way to unit-test hubs.
   * @example const connection = await app.signalr.inject('/chathub', { headers: { authorization: 'Bearer t' } })
   */
  inject (path: string, options?: InjectOptions): Promise<ClientConnection>
}

declare module 'fastify' {
  interface FastifyInstance {
    signalr: SignalRDecorator
    /**
     * Maps a hub at `path` (MapHub): registers `{path}/negotiate` and the
     * connection endpoint in this encapsulation context, so its hooks apply.
     * @example app.mapHub('/chathub', chat)
     */
    mapHub<M, C>(path: string, hub: HubDefinition<M, C>, options?: MapHubOptions): FastifyInstance
  }
}

/** The backplane's own counters plus what the hubs' scaled managers refused. */
function backplaneCounters (backplane: Backplane, runtimes: Iterable<HubRuntime>): BackplaneCounters {
  let malformed = 0
  let decoded = 0
  for (const runtime of runtimes) {
    const lifetime = runtime.lifetime as ScaledLifetimeManager
    malformed += lifetime.malformed
    decoded += lifetime.decoded
  }
  const { published, received, dropped } = backplane.stats
  return { published, received, dropped, decoded, malformed, subscriberGaps: (backplane as { subscriberGaps?: number }).subscriberGaps }
}

const signalrPlugin: FastifyPluginAsync<SignalRPluginOptions> = async (fastify, rawOptions) => {
  const options = resolvePluginOptions(rawOptions)
  const secret = (rawOptions as SignalRPluginOptions | undefined)?.connectionTokenSecret
  const store = new ConnectionStore<HubConnection>(secret === undefined ? null : new TokenSigner(secret))
  const runtimes = new Map<AnyHubDefinition, HubRuntime>()
  const paths = new Set<string>()
  const hooks = new HookRegistry()
  const telemetry = await loadTelemetry((rawOptions as SignalRPluginOptions | undefined)?.telemetry)
  const mapped: AsyncApiHub[] = []
  /** Hubs of the plugin itself (the explorer's monitor): not listed in AsyncAPI or the explorer. */
  const hidden = new Set<AnyHubDefinition>()
  const asyncapi = (rawOptions as SignalRPluginOptions | undefined)?.asyncapi
  if (asyncapi !== undefined) {
    // Built per request from the hubs mapped by then, so hubs mapped after register are in it.
    fastify.get(asyncapi.path, () => buildAsyncApi(mapped, asyncapi.info))
  }
  const backplane = (rawOptions as SignalRPluginOptions | undefined)?.backplane
  if (backplane !== undefined) {
    (backplane as { setLogger?: (log: typeof fastify.log) => void }).setLogger?.(fastify.log)
    telemetry?.observeBackplane((backplane as { kind?: string }).kind ?? 'custom', () => backplaneCounters(backplane, runtimes.values()))
    // Subscriptions are made once every hub is mapped.
    fastify.addHook('onReady', async () => {
      await Promise.all([...runtimes.values()].map((runtime) => (runtime.lifetime as ScaledLifetimeManager).start()))
    })
  }
  store.requireResolution(Math.min(options.keepAliveInterval, options.clientTimeoutInterval, options.handshakeTimeout,
    options.disconnectTimeout, options.clientResultTimeout, options.longPollTimeout))

  // Added before @fastify/websocket registers its own preClose, so ours runs first:
  // every client gets a Close with allowReconnect before sockets are torn down.
  fastify.addHook('preClose', async () => {
    await store.shutdown()
    await Promise.all([...runtimes.values()].map((runtime) => runtime.lifetime.close()))
    await backplane?.close()
  })

  // It routes upgrade requests through Fastify (hooks, authentication). Its ws
  // server, with ws's defaults, serves the application's own WebSocket routes
  // only: each hub upgrades with a server of its own limits (lib/http/routes.ts).
  // Only when WebSockets are enabled: it adds an onRequest and an onResponse hook
  // to every request of the application, long polls and POSTs included (about
  // 5 % of the instructions of a long-polling echo).
  const webSocketsEnabled = options.transports.includes('webSockets')
  if (webSocketsEnabled && !fastify.hasPlugin('@fastify/websocket')) {
    await fastify.register(websocket, { errorHandler: onWebSocketError })
  }

  function runtimeFor (hub: AnyHubDefinition, path: string): HubRuntime {
    let runtime = runtimes.get(hub)
    if (runtime === undefined) {
      const name = hub.name ?? path
      const lifetime: HubLifetimeManager = backplane === undefined
        ? new LocalLifetimeManager()
        : new ScaledLifetimeManager(backplane, name, {
          prefix: (backplane as { prefix?: string }).prefix ?? '',
          // A benchmarking switch a backplane factory may carry (`routing: 'hub'`).
          routing: (backplane as { routing?: BackplaneRouting }).routing,
          timeout: options.clientResultTimeout,
          log: fastify.log,
          clock: store.clock
        })
      runtime = new HubRuntime(hub, name, methodTableOf(hub)!, lifetime, hooks, telemetry)
      runtimes.set(hub, runtime)
    }
    return runtime
  }

  fastify.decorate('signalr', {
    hubContext (hub: AnyHubDefinition) {
      const runtime = runtimes.get(hub)
      if (runtime === undefined) {
        throw new codes.SIGNALR_ERR_HUB_NOT_MAPPED()
      }
      return { clients: runtime.clients, groups: runtime.groups }
    },
    asyncapi (info?: AsyncApiInfo) {
      return buildAsyncApi(mapped, info)
    },
    inject (path: string, injectOptions?: InjectOptions) {
      return injectHub(fastify, path, injectOptions)
    },
    addHook (name: HookName, fn: (...args: any[]) => unknown) {
      if (!isHookName(name)) {
        throw new codes.SIGNALR_ERR_INVALID_OPTION('addHook', `unknown hook '${String(name)}'`)
      }
      if (typeof fn !== 'function') throw new codes.SIGNALR_ERR_INVALID_OPTION(`addHook('${name}')`, `expected a function; got ${describeValue(fn)}`)
      hooks.add(name, fn)
    }
  } as SignalRDecorator)

  fastify.decorate('mapHub', function mapHub (this: FastifyInstance, path: string, hub: AnyHubDefinition, hubOptions?: MapHubOptions) {
    if (typeof path !== 'string' || !path.startsWith('/')) {
      throw new codes.SIGNALR_ERR_INVALID_HUB('fastify-signalr: mapHub', `path must be a string starting with '/'; got ${describeValue(path)}`)
    }
    if (methodTableOf(hub) === undefined) {
      throw new codes.SIGNALR_ERR_INVALID_HUB(`fastify-signalr: mapHub('${path}')`, 'expected a hub made by defineHub()')
    }
    const fullPath = (this.prefix ?? '') + path
    if (paths.has(fullPath)) {
      throw new codes.SIGNALR_ERR_INVALID_HUB(`fastify-signalr: mapHub('${path}')`, 'a hub is already mapped at this path')
    }
    const resolved = resolveHubOptions(options, hubOptions, path)
    if (resolved.transports.includes('webSockets') && !webSocketsEnabled && !this.hasPlugin('@fastify/websocket')) {
      throw new codes.SIGNALR_ERR_INVALID_OPTION(`mapHub('${path}')`,
        "transports: 'webSockets' needs @fastify/websocket, which fastify-signalr registers only when its own transports option includes 'webSockets': add it there, or register @fastify/websocket before fastify-signalr")
    }
    const route: RouteContext = Object.freeze({
      path,
      runtime: runtimeFor(hub, fullPath),
      options: resolved,
      protocols: resolveProtocols(resolved.protocols),
      transports: NETWORK_TRANSPORT_NAMES.filter((t) => resolved.transports.includes(t)),
      log: this.log
    })
    route.runtime.lifetime.useProtocols?.(route.protocols.values())
    paths.add(fullPath)
    if (!hidden.has(hub)) mapped.push({ name: route.runtime.name, path: fullPath, definition: hub, table: route.runtime.table })
    store.requireResolution(Math.min(resolved.keepAliveInterval, resolved.clientTimeoutInterval, resolved.handshakeTimeout,
      resolved.disconnectTimeout, resolved.clientResultTimeout, resolved.longPollTimeout))
    registerHubRoutes(this, store, route)
    return this
  })

  const explorer = (rawOptions as SignalRPluginOptions | undefined)?.explorer
  if (explorer !== undefined) {
    await registerExplorer(fastify, explorer, {
      store,
      runtimes: () => runtimes.values(),
      hubs: () => mapped,
      scaled: backplane !== undefined,
      hide: (hub) => hidden.add(hub)
    })
  }
}

/**
 * The fastify-signalr plugin (AddSignalR). Register it once per Fastify
 * instance, then map hubs with `app.mapHub(path, hub)`.
 *
 * @example
 * await app.register(signalr, { keepAliveInterval: 15_000 })
 * app.mapHub('/chathub', chat)
 */
export const plugin = fp(signalrPlugin, { fastify: '5.x', name: 'fastify-signalr' })
