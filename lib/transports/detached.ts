import type { Transport } from './transport.js'

const RESOLVED = Promise.resolve()

/**
 * Stands in for the transport of a stateful connection whose WebSocket
 * dropped: writes go only to the reconnect buffer until the client returns.
 */
export const DETACHED: Transport = Object.freeze({
  kind: 'WebSockets' as const,
  transferFormats: Object.freeze(['Text', 'Binary'] as const),
  needsKeepAlive: false,
  lingersAfterClose: false,
  bufferedAmount: 0,
  attach () {},
  setBinary () {},
  send () {},
  waitForDrain () {},
  pause () {},
  resume () {},
  close () {},
  whenClosed () { return RESOLVED }
})
