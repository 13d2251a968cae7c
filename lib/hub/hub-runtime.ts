import type { HubLifetimeManager } from '../lifetime/lifetime-manager.js'
import type { MethodTable } from './method-table.js'
import { HubHookRunner, type HookRegistry } from './hooks.js'
import type { Telemetry } from '../telemetry.js'
import { HubClientsImpl } from './clients.js'
import { GroupManagerImpl } from './groups.js'
import type { AnyHubDefinition } from './types.js'
import { HubStats } from './hub-stats.js'

/**
 * One hub definition at run time: its method table, its lifetime manager and
 * the selectors usable from outside (IHubContext). A hub mapped at several
 * paths shares one runtime, as one hub type shares one lifetime manager in ASP.NET.
 */
export class HubRuntime {
  readonly definition: AnyHubDefinition
  readonly name: string
  readonly table: MethodTable
  readonly lifetime: HubLifetimeManager
  readonly clients: HubClientsImpl
  readonly groups: GroupManagerImpl
  readonly hooks: HubHookRunner
  /** OpenTelemetry, when installed and enabled. */
  readonly telemetry: Telemetry | null
  /** Some method sets its own `rateLimit`. */
  readonly hasMethodRateLimits: boolean
  /** Traffic totals on this server, for the explorer's monitor. */
  readonly stats = new HubStats()

  constructor (
    definition: AnyHubDefinition, name: string, table: MethodTable, lifetime: HubLifetimeManager,
    pluginHooks: HookRegistry, telemetry: Telemetry | null = null
  ) {
    this.telemetry = telemetry
    this.hooks = new HubHookRunner(pluginHooks, definition.hooks)
    this.hasMethodRateLimits = [...table.values()].some((method) => method.rateLimit !== null)
    this.definition = definition
    this.name = name
    this.table = table
    this.lifetime = lifetime
    this.clients = new HubClientsImpl(lifetime)
    this.groups = new GroupManagerImpl(lifetime)
  }
}
