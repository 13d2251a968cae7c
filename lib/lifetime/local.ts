import { codes } from '../errors.js'
import type { HubLifetimeManager, LifetimeConnection, Target } from './lifetime-manager.js'
import type { SerializedMessage } from './serialized-message.js'

const RESOLVED: Promise<void> = Promise.resolve()

/**
 * The in-memory lifetime manager. Membership is indexed both ways (group to
 * connections, connection to groups; user to connections) so that removal on
 * disconnect is proportional to the connection's own groups, and empty groups
 * are deleted so nothing leaks.
 */
export class LocalLifetimeManager implements HubLifetimeManager {
  readonly connections = new Map<string, LifetimeConnection>()
  readonly groups = new Map<string, Set<LifetimeConnection>>()
  readonly users = new Map<string, Set<LifetimeConnection>>()

  onConnected (connection: LifetimeConnection): void {
    this.connections.set(connection.connectionId, connection)
    const userId = connection.userId
    if (userId !== undefined) {
      let set = this.users.get(userId)
      if (set === undefined) this.users.set(userId, set = new Set())
      set.add(connection)
    }
  }

  onDisconnected (connection: LifetimeConnection): void {
    if (this.connections.get(connection.connectionId) !== connection) return
    this.connections.delete(connection.connectionId)
    for (const name of connection.groupNames) this.leave(connection, name)
    connection.groupNames.clear()
    const userId = connection.userId
    if (userId !== undefined) {
      const set = this.users.get(userId)
      if (set !== undefined) {
        set.delete(connection)
        if (set.size === 0) this.users.delete(userId)
      }
    }
  }

  send (target: Target, message: SerializedMessage): Promise<void> {
    if (target.kind === 'connections' && target.ids.length === 1) {
      // Sending to one connection waits for a slow reader; broadcasts never do.
      const connection = this.connections.get(target.ids[0]!)
      if (connection === undefined) return RESOLVED
      connection.sendSerialized(message)
      return connection.drained() ?? RESOLVED
    }
    this.deliver(target, message)
    return RESOLVED
  }

  /** Writes `message` to every local connection the target selects, each once. */
  deliver (target: Target, message: SerializedMessage): void {
    switch (target.kind) {
      case 'all': {
        const exclude = target.exclude
        if (exclude === null || exclude.length === 0) {
          for (const connection of this.connections.values()) connection.sendSerialized(message)
        } else {
          for (const connection of this.connections.values()) {
            if (!exclude.includes(connection.connectionId)) connection.sendSerialized(message)
          }
        }
        return
      }
      case 'connections': {
        const ids = target.ids
        for (let i = 0; i < ids.length; i++) {
          // A list may name one id twice; send once, like every other selector.
          if (ids.indexOf(ids[i]!) !== i) continue
          this.connections.get(ids[i]!)?.sendSerialized(message)
        }
        return
      }
      case 'groups': {
        const { names, exclude } = target
        if (names.length === 1) {
          const members = this.groups.get(names[0]!)
          if (members === undefined) return
          for (const connection of members) {
            if (exclude === null || !exclude.includes(connection.connectionId)) connection.sendSerialized(message)
          }
          return
        }
        // Several groups: a connection in more than one of them still gets one copy.
        const seen = new Set<LifetimeConnection>()
        for (const name of names) {
          const members = this.groups.get(name)
          if (members === undefined) continue
          for (const connection of members) {
            if (seen.has(connection)) continue
            seen.add(connection)
            if (exclude === null || !exclude.includes(connection.connectionId)) connection.sendSerialized(message)
          }
        }
        return
      }
      case 'users': {
        const ids = target.ids
        for (let i = 0; i < ids.length; i++) {
          if (ids.indexOf(ids[i]!) !== i) continue
          const set = this.users.get(ids[i]!)
          if (set === undefined) continue
          for (const connection of set) connection.sendSerialized(message)
        }
      }
    }
  }

  addToGroup (connectionId: string, groupName: string): Promise<void> {
    const connection = this.connections.get(connectionId)
    if (connection !== undefined && !connection.groupNames.has(groupName)) {
      connection.groupNames.add(groupName)
      let members = this.groups.get(groupName)
      if (members === undefined) this.groups.set(groupName, members = new Set())
      members.add(connection)
    }
    return RESOLVED
  }

  removeFromGroup (connectionId: string, groupName: string): Promise<void> {
    const connection = this.connections.get(connectionId)
    if (connection !== undefined && connection.groupNames.delete(groupName)) {
      this.leave(connection, groupName)
    }
    return RESOLVED
  }

  invokeClient (connectionId: string, method: string, args: unknown[]): Promise<unknown> {
    const connection = this.connections.get(connectionId)
    if (connection === undefined) return Promise.reject(new codes.SIGNALR_ERR_CONNECTION_NOT_FOUND(connectionId))
    return connection.invokeClient(method, args)
  }

  close (): Promise<void> {
    return RESOLVED
  }

  private leave (connection: LifetimeConnection, groupName: string): void {
    const members = this.groups.get(groupName)
    if (members === undefined) return
    members.delete(connection)
    if (members.size === 0) this.groups.delete(groupName)
  }
}
