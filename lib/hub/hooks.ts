import type { Hub, HubHooks, InvocationEvent, InvocationResultEvent } from './types.js'

export type { HubHooks, InvocationEvent, InvocationResultEvent }

export type HookName = keyof HubHooks

const HOOK_NAMES: readonly HookName[] = ['beforeInvocation', 'afterInvocation', 'onConnect', 'onDisconnect']

export function isHookName (name: unknown): name is HookName {
  return HOOK_NAMES.includes(name as HookName)
}

/** Plugin-wide hooks added with `app.signalr.addHook`, shared by every hub of the instance. */
export class HookRegistry {
  readonly beforeInvocation: Array<NonNullable<HubHooks['beforeInvocation']>> = []
  readonly afterInvocation: Array<NonNullable<HubHooks['afterInvocation']>> = []
  readonly onConnect: Array<NonNullable<HubHooks['onConnect']>> = []
  readonly onDisconnect: Array<NonNullable<HubHooks['onDisconnect']>> = []

  add (name: HookName, fn: (...args: any[]) => unknown): void {
    (this[name] as Array<(...args: any[]) => unknown>).push(fn)
  }
}

/**
 * The hooks that apply to one hub: the plugin's first, then the hub's own.
 * `guardsInvocations` lets the dispatcher keep its fast path when there are none.
 */
export class HubHookRunner {
  private readonly plugin: HookRegistry
  private readonly own: HubHooks

  constructor (plugin: HookRegistry, own: HubHooks | undefined) {
    this.plugin = plugin
    this.own = own ?? {}
  }

  get guardsInvocations (): boolean {
    return this.plugin.beforeInvocation.length > 0 || this.plugin.afterInvocation.length > 0 ||
      this.own.beforeInvocation !== undefined || this.own.afterInvocation !== undefined
  }

  async beforeInvocation (event: InvocationEvent): Promise<void> {
    for (const hook of this.plugin.beforeInvocation) await hook(event)
    if (this.own.beforeInvocation !== undefined) await this.own.beforeInvocation(event)
  }

  async afterInvocation (event: InvocationResultEvent): Promise<void> {
    for (const hook of this.plugin.afterInvocation) await hook(event)
    if (this.own.afterInvocation !== undefined) await this.own.afterInvocation(event)
  }

  /** Whether any onConnect hook is set: a connection without one makes no lifecycle context for it. */
  get hasOnConnect (): boolean {
    return this.plugin.onConnect.length > 0 || this.own.onConnect !== undefined
  }

  get hasOnDisconnect (): boolean {
    return this.plugin.onDisconnect.length > 0 || this.own.onDisconnect !== undefined
  }

  async onConnect (hub: Hub): Promise<void> {
    for (const hook of this.plugin.onConnect) await hook(hub)
    if (this.own.onConnect !== undefined) await this.own.onConnect(hub)
  }

  async onDisconnect (hub: Hub, error: Error | undefined): Promise<void> {
    for (const hook of this.plugin.onDisconnect) await hook(hub, error)
    if (this.own.onDisconnect !== undefined) await this.own.onDisconnect(hub, error)
  }
}
