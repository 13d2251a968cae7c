import type { HubProtocol } from './hub-protocol.js'
import { jsonProtocol } from './json.js'
import { messagePackProtocol } from './messagepack.js'

export type ProtocolName = 'json' | 'messagepack'

/** The codecs this build ships, by name. */
const registry: ReadonlyMap<string, HubProtocol> = new Map([
  [jsonProtocol.name, jsonProtocol],
  [messagePackProtocol.name, messagePackProtocol]
])

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
