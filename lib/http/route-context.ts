import type { FastifyBaseLogger } from 'fastify'
import type { ResolvedHubOptions, TransportName } from '../options.js'
import type { HubProtocol } from '../protocol/hub-protocol.js'
import type { HubRuntime } from '../hub/hub-runtime.js'

/** Everything one `mapHub` call fixed, frozen once: the per-route counterpart of a hub runtime. */
export interface RouteContext {
  readonly path: string
  readonly runtime: HubRuntime
  readonly options: ResolvedHubOptions
  /** Enabled protocols keyed by lower-case name. */
  readonly protocols: ReadonlyMap<string, HubProtocol>
  /** Enabled transports this build can serve, in ASP.NET's advertising order. */
  readonly transports: readonly TransportName[]
  /** The logger of the scope `mapHub` was called in: connection loggers are its children. */
  readonly log: FastifyBaseLogger
}
