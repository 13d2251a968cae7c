import type { HubProtocol } from './hub-protocol.js'
import { jsonProtocol } from './json.js'

export type ProtocolName = 'json' | 'messagepack'

/**
 * The codecs this build ships. MessagePack is accepted in options so configs
 * written for ASP.NET keep working; until its codec lands, a client asking for
 * it gets the standard "not supported" handshake error.
 */
const registry: ReadonlyMap<string, HubProtocol> = new Map([[jsonProtocol.name, jsonProtocol]])

/** The enabled protocols, keyed by lower-case name for the handshake lookup. */
export function resolveProtocols (names: readonly ProtocolName[]): Map<string, HubProtocol> {
  const out = new Map<string, HubProtocol>()
  for (const name of names) {
    const protocol = registry.get(name)
    if (protocol !== undefined) out.set(name, protocol)
  }
  return out
}

export type { HubProtocol, MessageReader, TransferFormat } from './hub-protocol.js'
