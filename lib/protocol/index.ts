import type { HubProtocol, HubProtocolDefinition } from './hub-protocol.js'
import { jsonHubProtocol } from './json.js'
import { messagePackHubProtocol } from './messagepack.js'
import { definitionError, registerProtocol } from './registry.js'

/** The protocols this build ships, by the name the `protocols` option uses. */
export type ProtocolName = 'json' | 'messagepack'

/** One entry of the `protocols` option: a built-in protocol's name, or a protocol object. */
export type ProtocolOption = ProtocolName | HubProtocolDefinition<unknown>

const builtIns: ReadonlyMap<string, HubProtocolDefinition<unknown>> = new Map<string, HubProtocolDefinition<unknown>>([
  [jsonHubProtocol.name, jsonHubProtocol as HubProtocolDefinition<unknown>],
  [messagePackHubProtocol.name, messagePackHubProtocol as HubProtocolDefinition<unknown>]
])

function definitionOf (entry: unknown): HubProtocolDefinition<unknown> | string {
  if (typeof entry === 'string') {
    return builtIns.get(entry) ?? `names an unknown protocol '${entry}' (built in: ${[...builtIns.keys()].map((n) => `'${n}'`).join(', ')}; pass any other as a protocol object)`
  }
  const error = definitionError(entry)
  if (error !== null) return `has an invalid entry: ${error}`
  const definition = entry as HubProtocolDefinition<unknown>
  const builtIn = builtIns.get(definition.name.toLowerCase())
  if (builtIn !== undefined && builtIn !== definition) {
    // The backplane carries the built-in encodings under these names; another codec under them would be misread.
    return `has a protocol object named '${definition.name}', the name of a built-in protocol; give it another name`
  }
  return definition
}

/**
 * Why a `protocols` option value is unusable (unknown name, malformed object,
 * two protocols under one name), or null when it is fine. Run when options are
 * validated, so every mistake fails at register / mapHub time.
 */
export function protocolListError (value: unknown): string | null {
  if (!Array.isArray(value)) return "must be an array of protocol names ('json', 'messagepack') or protocol objects"
  if (value.length === 0) return 'must name at least one protocol'
  const seen = new Set<string>()
  for (const entry of value) {
    const definition = definitionOf(entry)
    if (typeof definition === 'string') return definition
    const key = definition.name.toLowerCase()
    if (seen.has(key)) return `lists protocol '${definition.name}' twice (names are compared case-insensitively, as in the handshake)`
    seen.add(key)
  }
  return null
}

/** The enabled protocols, keyed by lower-case name for the handshake lookup. The list is already validated. */
export function resolveProtocols (entries: readonly ProtocolOption[]): Map<string, HubProtocol> {
  const out = new Map<string, HubProtocol>()
  for (const entry of entries) {
    const definition = definitionOf(entry)
    if (typeof definition === 'string') continue
    const protocol = registerProtocol(definition)
    out.set(protocol.name.toLowerCase(), protocol)
  }
  return out
}

export type { HubProtocol, MessageReader, TransferFormat } from './hub-protocol.js'
