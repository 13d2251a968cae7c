import type { HubProtocol } from '../protocol/hub-protocol.js'
import type { SerializedMessage } from './serialized-message.js'

/**
 * Who a message goes to: immutable data made by the selectors. The same
 * descriptor is what a backplane carries between servers.
 */
export type Target =
  | { readonly kind: 'all', readonly exclude: readonly string[] | null }
  | { readonly kind: 'connections', readonly ids: readonly string[] }
  | { readonly kind: 'groups', readonly names: readonly string[], readonly exclude: readonly string[] | null }
  | { readonly kind: 'users', readonly ids: readonly string[] }

/** What the lifetime manager needs from a connection. */
export interface LifetimeConnection {
  readonly connectionId: string
  readonly userId: string | undefined
  /** Groups this connection is in; kept by the lifetime manager. */
  readonly groupNames: Set<string>
  /** Writes an already-serialized message (no-op once the connection is closed). */
  sendSerialized (message: SerializedMessage): void
  /**
   * Null while the connection keeps up; otherwise a promise for when its
   * outgoing buffer is below `applicationMaxBufferSize` again.
   */
  drained (): Promise<void> | null
  /** A client result: calls the client's handler and awaits its Completion. */
  invokeClient (method: string, args: unknown[]): Promise<unknown>
}

/**
 * Connection, group and user bookkeeping for one hub, and delivery to targets
 * (HubLifetimeManager). The in-memory one is the default; a scaled one adds a backplane.
 */
export interface HubLifetimeManager {
  onConnected (connection: LifetimeConnection): void | Promise<void>
  onDisconnected (connection: LifetimeConnection): void | Promise<void>
  send (target: Target, message: SerializedMessage): Promise<void>
  addToGroup (connectionId: string, groupName: string): Promise<void>
  removeFromGroup (connectionId: string, groupName: string): Promise<void>
  invokeClient (connectionId: string, method: string, args: unknown[]): Promise<unknown>
  close (): Promise<void>
  /** Told the protocols each route of the hub enables (a backplane carries an encoding per protocol). */
  useProtocols? (protocols: Iterable<HubProtocol>): void
}
