import { codes, describeValue } from '../errors.js'
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
    try {
      return this.lifetime.invokeClient(this.connectionId, method, args)
    } catch (err) {
      // Whatever fails, the caller gets a rejection, as from send.
      return Promise.reject(err)
    }
  }
}

/**
 * What a selector given a bad argument returns: every send and invoke on it
 * rejects with the same error. Selectors never throw, so a caller handles a
 * bad id the way it handles any failed send (as `hub.groups` does).
 */
class RefusedProxy implements SingleClientProxy<any> {
  private readonly error: Error

  constructor (error: Error) {
    this.error = error
  }

  send (): Promise<void> { return Promise.reject(this.error) }
  invoke (): Promise<any> { return Promise.reject(this.error) }
}

/** The refusal for an argument that is not a string, or null when it is one. */
export function notString (value: unknown, name: string): Error | null {
  return typeof value === 'string' ? null : new codes.SIGNALR_ERR_INVALID_ARGUMENT(name, 'a string', describeValue(value))
}

function notStrings (value: unknown, name: string): Error | null {
  if (Array.isArray(value) && value.every((v) => typeof v === 'string')) return null
  return new codes.SIGNALR_ERR_INVALID_ARGUMENT(name, 'an array of strings', describeValue(value))
}

/** The selectors available outside a hub invocation (IHubClients). */
export class HubClientsImpl implements HubClients<any> {
  protected readonly lifetime: HubLifetimeManager
  readonly all: TargetProxy

  constructor (lifetime: HubLifetimeManager) {
    this.lifetime = lifetime
    this.all = new TargetProxy(lifetime, ALL)
  }

  client (connectionId: string): SingleClientProxy<any> {
    const refused = notString(connectionId, 'connectionId')
    return refused !== null ? new RefusedProxy(refused) : new SingleTargetProxy(this.lifetime, connectionId)
  }

  clients (connectionIds: readonly string[]): ClientProxy<any> {
    const refused = notStrings(connectionIds, 'connectionIds')
    return refused !== null ? new RefusedProxy(refused) : new TargetProxy(this.lifetime, { kind: 'connections', ids: [...connectionIds] })
  }

  allExcept (excludedConnectionIds: readonly string[]): ClientProxy<any> {
    const refused = notStrings(excludedConnectionIds, 'excludedConnectionIds')
    return refused !== null ? new RefusedProxy(refused) : new TargetProxy(this.lifetime, { kind: 'all', exclude: [...excludedConnectionIds] })
  }

  group (groupName: string): ClientProxy<any> {
    const refused = notString(groupName, 'groupName')
    return refused !== null ? new RefusedProxy(refused) : new TargetProxy(this.lifetime, { kind: 'groups', names: [groupName], exclude: null })
  }

  groups (groupNames: readonly string[]): ClientProxy<any> {
    const refused = notStrings(groupNames, 'groupNames')
    return refused !== null ? new RefusedProxy(refused) : new TargetProxy(this.lifetime, { kind: 'groups', names: [...groupNames], exclude: null })
  }

  groupExcept (groupName: string, excludedConnectionIds: readonly string[]): ClientProxy<any> {
    const refused = notString(groupName, 'groupName') ?? notStrings(excludedConnectionIds, 'excludedConnectionIds')
    return refused !== null
      ? new RefusedProxy(refused)
      : new TargetProxy(this.lifetime, { kind: 'groups', names: [groupName], exclude: [...excludedConnectionIds] })
  }

  user (userId: string): ClientProxy<any> {
    const refused = notString(userId, 'userId')
    return refused !== null ? new RefusedProxy(refused) : new TargetProxy(this.lifetime, { kind: 'users', ids: [userId] })
  }

  users (userIds: readonly string[]): ClientProxy<any> {
    const refused = notStrings(userIds, 'userIds')
    return refused !== null ? new RefusedProxy(refused) : new TargetProxy(this.lifetime, { kind: 'users', ids: [...userIds] })
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

  override client (connectionId: string): SingleClientProxy<any> {
    const refused = notString(connectionId, 'connectionId')
    return refused !== null ? new RefusedProxy(refused) : new SingleTargetProxy(this.lifetime, connectionId, this.hook)
  }

  get others (): TargetProxy {
    return this.othersProxy ??= new TargetProxy(this.lifetime, { kind: 'all', exclude: [this.connectionId] })
  }

  othersInGroup (groupName: string): ClientProxy<any> {
    const refused = notString(groupName, 'groupName')
    return refused !== null ? new RefusedProxy(refused) : new TargetProxy(this.lifetime, { kind: 'groups', names: [groupName], exclude: [this.connectionId] })
  }
}
