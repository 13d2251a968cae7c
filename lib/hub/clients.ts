import { MessageType } from '../protocol/messages.js'
import type { HubLifetimeManager, Target } from '../lifetime/lifetime-manager.js'
import { SerializedMessage } from '../lifetime/serialized-message.js'
import type { ClientProxy, HubCallerClients, HubClients, SingleClientProxy } from './types.js'

const ALL: Target = Object.freeze({ kind: 'all', exclude: null })

/** A selector's proxy: the target descriptor plus the lifetime manager that interprets it. */
export class TargetProxy implements ClientProxy<any> {
  protected readonly lifetime: HubLifetimeManager
  readonly target: Target

  constructor (lifetime: HubLifetimeManager, target: Target) {
    this.lifetime = lifetime
    this.target = target
  }

  send (method: string, ...args: unknown[]): Promise<void> {
    try {
      return this.lifetime.send(this.target, new SerializedMessage({
        type: MessageType.Invocation, target: method, arguments: args
      }))
    } catch (err) {
      // Arguments that cannot be serialized fail this send, as a rejection like any other failure.
      return Promise.reject(err)
    }
  }
}

/** Asked before a hub method starts waiting for a client result; returns the refusal, if any (see InvocationContext). */
export interface ClientResultHook {
  beforeClientResult (): Error | null
}

export class SingleTargetProxy extends TargetProxy implements SingleClientProxy<any> {
  readonly connectionId: string
  private readonly hook: ClientResultHook | null

  constructor (lifetime: HubLifetimeManager, connectionId: string, hook: ClientResultHook | null = null) {
    super(lifetime, { kind: 'connections', ids: [connectionId] })
    this.connectionId = connectionId
    this.hook = hook
  }

  invoke (method: string, ...args: unknown[]): Promise<any> {
    const refused = this.hook?.beforeClientResult() ?? null
    if (refused !== null) return Promise.reject(refused)
    return this.lifetime.invokeClient(this.connectionId, method, args)
  }
}

function assertString (value: unknown, what: string): asserts value is string {
  if (typeof value !== 'string') throw new TypeError(`${what} must be a string`)
}

function assertStrings (value: unknown, what: string): asserts value is readonly string[] {
  if (!Array.isArray(value) || !value.every((v) => typeof v === 'string')) {
    throw new TypeError(`${what} must be an array of strings`)
  }
}

/** The selectors available outside a hub invocation (IHubClients). */
export class HubClientsImpl implements HubClients<any> {
  protected readonly lifetime: HubLifetimeManager
  readonly all: TargetProxy

  constructor (lifetime: HubLifetimeManager) {
    this.lifetime = lifetime
    this.all = new TargetProxy(lifetime, ALL)
  }

  client (connectionId: string): SingleTargetProxy {
    assertString(connectionId, 'connectionId')
    return new SingleTargetProxy(this.lifetime, connectionId)
  }

  clients (connectionIds: readonly string[]): TargetProxy {
    assertStrings(connectionIds, 'connectionIds')
    return new TargetProxy(this.lifetime, { kind: 'connections', ids: [...connectionIds] })
  }

  allExcept (excludedConnectionIds: readonly string[]): TargetProxy {
    assertStrings(excludedConnectionIds, 'excludedConnectionIds')
    return new TargetProxy(this.lifetime, { kind: 'all', exclude: [...excludedConnectionIds] })
  }

  group (groupName: string): TargetProxy {
    assertString(groupName, 'groupName')
    return new TargetProxy(this.lifetime, { kind: 'groups', names: [groupName], exclude: null })
  }

  groups (groupNames: readonly string[]): TargetProxy {
    assertStrings(groupNames, 'groupNames')
    return new TargetProxy(this.lifetime, { kind: 'groups', names: [...groupNames], exclude: null })
  }

  groupExcept (groupName: string, excludedConnectionIds: readonly string[]): TargetProxy {
    assertString(groupName, 'groupName')
    assertStrings(excludedConnectionIds, 'excludedConnectionIds')
    return new TargetProxy(this.lifetime, { kind: 'groups', names: [groupName], exclude: [...excludedConnectionIds] })
  }

  user (userId: string): TargetProxy {
    assertString(userId, 'userId')
    return new TargetProxy(this.lifetime, { kind: 'users', ids: [userId] })
  }

  users (userIds: readonly string[]): TargetProxy {
    assertStrings(userIds, 'userIds')
    return new TargetProxy(this.lifetime, { kind: 'users', ids: [...userIds] })
  }
}

/**
 * The selectors inside a hub: adds `caller`, `others` and `othersInGroup`,
 * which are relative to the calling connection (IHubCallerClients).
 */
export class HubCallerClientsImpl extends HubClientsImpl implements HubCallerClients<any> {
  readonly caller: SingleClientProxy<any>
  private readonly connectionId: string
  private readonly hook: ClientResultHook
  private othersProxy: TargetProxy | null = null

  constructor (lifetime: HubLifetimeManager, connectionId: string, caller: SingleClientProxy<any>, hook: ClientResultHook) {
    super(lifetime)
    this.connectionId = connectionId
    this.caller = caller
    this.hook = hook
  }

  override client (connectionId: string): SingleTargetProxy {
    if (typeof connectionId !== 'string') throw new TypeError('connectionId must be a string')
    return new SingleTargetProxy(this.lifetime, connectionId, this.hook)
  }

  get others (): TargetProxy {
    return this.othersProxy ??= new TargetProxy(this.lifetime, { kind: 'all', exclude: [this.connectionId] })
  }

  othersInGroup (groupName: string): TargetProxy {
    assertString(groupName, 'groupName')
    return new TargetProxy(this.lifetime, { kind: 'groups', names: [groupName], exclude: [this.connectionId] })
  }
}
