import type { HubLifetimeManager } from '../lifetime/lifetime-manager.js'
import { notString } from './clients.js'
import type { GroupManager } from './types.js'

/** `hub.groups`: membership changes go through the lifetime manager (and so across servers). */
export class GroupManagerImpl implements GroupManager {
  private readonly lifetime: HubLifetimeManager

  constructor (lifetime: HubLifetimeManager) {
    this.lifetime = lifetime
  }

  add (connectionId: string, groupName: string): Promise<void> {
    return this.change(connectionId, groupName, true)
  }

  remove (connectionId: string, groupName: string): Promise<void> {
    return this.change(connectionId, groupName, false)
  }

  /** Never throws: a bad argument, or a backplane that throws instead of rejecting, is a rejection. */
  private change (connectionId: string, groupName: string, add: boolean): Promise<void> {
    const refused = notString(connectionId, 'connectionId') ?? notString(groupName, 'groupName')
    if (refused !== null) return Promise.reject(refused)
    try {
      return add ? this.lifetime.addToGroup(connectionId, groupName) : this.lifetime.removeFromGroup(connectionId, groupName)
    } catch (err) {
      return Promise.reject(err)
    }
  }
}
