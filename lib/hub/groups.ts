import type { HubLifetimeManager } from '../lifetime/lifetime-manager.js'
import type { GroupManager } from './types.js'

/** `hub.groups`: membership changes go through the lifetime manager (and so across servers). */
export class GroupManagerImpl implements GroupManager {
  private readonly lifetime: HubLifetimeManager

  constructor (lifetime: HubLifetimeManager) {
    this.lifetime = lifetime
  }

  add (connectionId: string, groupName: string): Promise<void> {
    if (typeof connectionId !== 'string') return Promise.reject(new TypeError('connectionId must be a string'))
    if (typeof groupName !== 'string') return Promise.reject(new TypeError('groupName must be a string'))
    return this.lifetime.addToGroup(connectionId, groupName)
  }

  remove (connectionId: string, groupName: string): Promise<void> {
    if (typeof connectionId !== 'string') return Promise.reject(new TypeError('connectionId must be a string'))
    if (typeof groupName !== 'string') return Promise.reject(new TypeError('groupName must be a string'))
    return this.lifetime.removeFromGroup(connectionId, groupName)
  }
}
