/**
 * The public names of the transports, written out rather than derived from
 * the registry's type: the registry's declaration names the transport
 * classes, whose declarations import `ws`, and a user's type check must not
 * need `@types/ws`. `registry.ts` checks at compile time that these unions
 * and its entries agree, so a new transport cannot be forgotten here.
 */

/** Names a network client may use, as the `transports` option spells them. */
export type TransportName = 'webSockets' | 'serverSentEvents' | 'longPolling'
/** What `hub.transport` reports. */
export type TransportKind = 'WebSockets' | 'ServerSentEvents' | 'LongPolling' | 'InMemory'
