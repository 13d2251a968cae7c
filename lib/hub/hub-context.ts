import type { GroupManager, HubClients, UntypedClient } from './types.js'

/**
 * Sending from outside a hub (IHubContext): every selector except those
 * relative to a caller, plus group management.
 *
 * @example
 * await app.signalr.hubContext(chat).clients.all.send('ReceiveMessage', 'system', 'hi')
 */
export interface HubContext<C = UntypedClient> {
  readonly clients: HubClients<C>
  readonly groups: GroupManager
}
