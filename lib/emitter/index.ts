import type { FastifyBaseLogger } from 'fastify'
import type { Backplane } from '../backplane/backplane.js'
import { HubClientsImpl } from '../hub/clients.js'
import { GroupManagerImpl } from '../hub/groups.js'
import type { HubContext } from '../hub/hub-context.js'
import type { HubDefinition } from '../hub/types.js'
import type { BackplaneRouting } from '../lifetime/channels.js'
import type { HubLifetimeManager, LifetimeConnection, Target } from '../lifetime/lifetime-manager.js'
import { ScaledLifetimeManager } from '../lifetime/scaled.js'
import type { SerializedMessage } from '../lifetime/serialized-message.js'
import { codes, describeValue } from '../errors.js'

export interface HubEmitterOptions<M, C> {
  /** The backplane the servers use (same `prefix`), e.g. `redisBackplane({ redis })`. It stays yours to close. */
  backplane: Backplane
  /** The hub definition the servers map: its `client` map types the selectors. */
  hub: HubDefinition<M, C>
  /** The hub's channel name when the hub has no `name`: the path the servers map it at. */
  name?: string
  /** ms to wait for a server's answer to a group change or client result. Default 30 000. */
  timeout?: number
  /** Where to report malformed answers and failed subscriptions. Default: nowhere. */
  log?: FastifyBaseLogger
}

/**
 * `hubContext(hub)` for a process that serves no connections (a worker, a
 * job): the same selectors and groups, over the servers' backplane.
 */
export interface HubEmitter<C> extends HubContext<C> {
  /** Stops listening for answers; pending group changes and client results reject. Does not close the backplane. */
  close (): Promise<void>
}

const silentLogger = {
  level: 'silent',
  fatal () {},
  error () {},
  warn () {},
  info () {},
  debug () {},
  trace () {},
  silent () {},
  child () { return silentLogger }
} as unknown as FastifyBaseLogger

/**
 * A scaled lifetime manager without connections, that subscribes to its ack
 * channel once, in the background: sends go out at once, and requests (which
 * need the answer channel) wait for that subscription first.
 */
class EmitterLifetime implements HubLifetimeManager {
  private readonly manager: ScaledLifetimeManager
  private readonly started: Promise<void>

  constructor (manager: ScaledLifetimeManager) {
    this.manager = manager
    this.started = manager.start()
    // Reported to whoever makes a request; no unhandled rejection meanwhile.
    this.started.catch(() => {})
  }

  onConnected (_connection: LifetimeConnection): void {}
  onDisconnected (_connection: LifetimeConnection): void {}
  send (target: Target, message: SerializedMessage): Promise<void> { return this.manager.send(target, message) }

  async addToGroup (connectionId: string, groupName: string): Promise<void> {
    await this.started
    await this.manager.addToGroup(connectionId, groupName)
  }

  async removeFromGroup (connectionId: string, groupName: string): Promise<void> {
    await this.started
    await this.manager.removeFromGroup(connectionId, groupName)
  }

  async invokeClient (connectionId: string, method: string, args: unknown[]): Promise<unknown> {
    await this.started
    return await this.manager.invokeClient(connectionId, method, args)
  }

  async close (): Promise<void> {
    await this.started.catch(() => {})
    await this.manager.close()
  }
}

/**
 * Sends to a hub's clients from a process that is not one of its servers,
 * as socket.io's emitter does: every selector of `hubContext`, group changes
 * and client results, typed by the hub's `client` map.
 *
 * @example
 * const backplane = redisBackplane({ redis })
 * const chat = createHubEmitter({ backplane, hub: chatHub })
 * await chat.clients.group('news').send('ReceiveMessage', 'cron', 'nightly build done')
 * await chat.close()
 * await backplane.close()
 */
export function createHubEmitter<M, C> (options: HubEmitterOptions<M, C>): HubEmitter<C> {
  if (options === null || typeof options !== 'object') throw new codes.SIGNALR_ERR_INVALID_OPTION('createHubEmitter', `expected { backplane, hub }; got ${describeValue(options)}`)
  const { backplane, hub } = options
  if (backplane === null || typeof backplane !== 'object' || typeof backplane.publish !== 'function') {
    throw new codes.SIGNALR_ERR_INVALID_OPTION('createHubEmitter', `option "backplane" must be a backplane, e.g. redisBackplane({ redis }); got ${describeValue(backplane)}`)
  }
  const name = options.name ?? hub?.name
  if (typeof name !== 'string' || name === '') {
    throw new codes.SIGNALR_ERR_INVALID_OPTION('createHubEmitter', `the hub has no name; pass option "name": the path the servers map it at; got ${describeValue(name)}`)
  }
  const manager = new ScaledLifetimeManager(backplane, name, {
    prefix: (backplane as { prefix?: string }).prefix ?? '',
    routing: (backplane as { routing?: BackplaneRouting }).routing,
    timeout: options.timeout ?? 30_000,
    log: options.log ?? silentLogger,
    serving: false
  })
  const lifetime = new EmitterLifetime(manager)
  return {
    clients: new HubClientsImpl(lifetime),
    groups: new GroupManagerImpl(lifetime),
    close: () => lifetime.close()
  } as unknown as HubEmitter<C>
}
