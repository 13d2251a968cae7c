import type { FastifyRequest } from 'fastify'
import { z } from 'zod'
import { codes, describeValue } from './errors.js'
import { protocolListError, type ProtocolOption } from './protocol/index.js'
import { isBackplane, type Backplane } from './backplane/backplane.js'
import type { RateLimit } from './dispatcher/rate-limit.js'
import { MAX_VALUE_DEPTH } from './protocol/values.js'
import type { TransportName } from './transports/names.js'
import { NETWORK_TRANSPORT_NAMES } from './transports/registry.js'

export type { TransportName }

/** The options that can be set for the whole plugin and overridden per hub (HubOptions). */
export interface HubOptions {
  /** ms between server pings. Default 15 000. */
  keepAliveInterval?: number
  /** ms without any client message before the server closes the connection. Default 30 000. */
  clientTimeoutInterval?: number
  /** ms the client has to complete the handshake. Default 15 000. */
  handshakeTimeout?: number
  /** Largest single incoming message in bytes; `null` = unlimited. Default 32 768. */
  maximumReceiveMessageSize?: number | null
  /** Items queued per client-to-server stream before the server stops reading. Default 10. */
  streamBufferCapacity?: number
  /** Non-streaming invocations run at once per connection. Default 1. */
  maximumParallelInvocationsPerClient?: number
  /** Send exception details to clients. Default false. */
  enableDetailedErrors?: boolean
  /** Bytes kept for stateful reconnect. Default 100 000. */
  statefulReconnectBufferSize?: number
  /** Default: all three. */
  transports?: TransportName[]
  /**
   * Protocol names (`'json'`, `'messagepack'`) and custom protocol objects
   * (see `HubProtocolDefinition`). Default: `['json', 'messagepack']`.
   */
  protocols?: ProtocolOption[]
  /** ms a long poll is held open without data. Default 90 000. */
  longPollTimeout?: number
  /** Opt-in, as in ASP.NET Core. Default false. */
  allowStatefulReconnects?: boolean
  /** Maps a request to a user id (IUserIdProvider). */
  getUserId?: (request: FastifyRequest) => string | null | undefined
  /**
   * ms a negotiated connection may stay without a transport before it is
   * dropped (ASP.NET's DisconnectTimeout). Default 15 000.
   */
  disconnectTimeout?: number
  /** ms a client result (`invoke` on a client) may take before it rejects. Default 30 000. */
  clientResultTimeout?: number
  /**
   * Bytes waiting for one connection above which code sending only to it
   * (a stream, `caller.send`, `client(id).send`) waits for the client to read
   * (ASP.NET's ApplicationMaxBufferSize). Default 64 KiB.
   */
  applicationMaxBufferSize?: number
  /**
   * Hard limit of bytes waiting for one connection. Broadcasts never wait for
   * one slow receiver; a client this far behind is closed with a Close error,
   * so a slow reader cannot grow the server's memory. Default 1 MiB.
   */
  maximumSendBufferSize?: number
  /**
   * Origins allowed to open a WebSocket (exact `scheme://host[:port]` strings).
   * CORS does not cover WebSocket upgrades, so browsers from any origin could
   * otherwise connect with the user's cookies. Absent: every origin.
   */
  allowedOrigins?: string[]
  /**
   * Invocations per connection: `{ max, timeWindow, closeAfter? }`. Calls over
   * the limit get an error and the connection stays open, unless more than
   * `closeAfter` are refused in one window. Methods may set their own limit too.
   */
  rateLimit?: RateLimit
  /**
   * How deep arrays and objects may nest inside one incoming value (an
   * argument, a stream item, a client result): `[1]` is 1 deep. Deeper values
   * are refused before the handler runs (System.Text.Json's MaxDepth). At most
   * 512, the limit every value has in both directions. Default 64.
   */
  maximumMessageDepth?: number
}

export type ResolvedHubOptions = Required<Omit<HubOptions, 'getUserId' | 'maximumReceiveMessageSize' | 'allowedOrigins' | 'rateLimit'>> & {
  rateLimit: RateLimit | null
  maximumReceiveMessageSize: number | null
  allowedOrigins: readonly string[] | null
  getUserId: ((request: FastifyRequest) => string | null | undefined) | null
}

export const defaults: ResolvedHubOptions = Object.freeze({
  keepAliveInterval: 15_000,
  clientTimeoutInterval: 30_000,
  handshakeTimeout: 15_000,
  maximumReceiveMessageSize: 32 * 1024,
  streamBufferCapacity: 10,
  maximumParallelInvocationsPerClient: 1,
  enableDetailedErrors: false,
  statefulReconnectBufferSize: 100_000,
  transports: [...NETWORK_TRANSPORT_NAMES],
  protocols: ['json', 'messagepack'] as ProtocolOption[],
  longPollTimeout: 90_000,
  allowStatefulReconnects: false,
  getUserId: null,
  disconnectTimeout: 15_000,
  clientResultTimeout: 30_000,
  applicationMaxBufferSize: 64 * 1024,
  maximumSendBufferSize: 1024 * 1024,
  allowedOrigins: null,
  rateLimit: null,
  maximumMessageDepth: 64
})

const ms = z.number({ error: 'must be a number of milliseconds' }).int('must be an integer').positive('must be greater than 0')
const count = z.number({ error: 'must be a number' }).int('must be an integer').min(1, 'must be at least 1')
const bytes = z.number({ error: 'must be a number of bytes' }).int('must be an integer').positive('must be greater than 0')

export const rateLimitSchema = z.strictObject({
  max: count,
  timeWindow: ms,
  closeAfter: z.number().int().min(0).optional()
}, { error: 'must be { max, timeWindow, closeAfter? }' })

const hubOptionsShape = {
  keepAliveInterval: ms.optional(),
  clientTimeoutInterval: ms.optional(),
  handshakeTimeout: ms.optional(),
  maximumReceiveMessageSize: bytes.nullable().optional(),
  streamBufferCapacity: count.optional(),
  maximumParallelInvocationsPerClient: count.optional(),
  enableDetailedErrors: z.boolean({ error: 'must be a boolean' }).optional(),
  statefulReconnectBufferSize: bytes.optional(),
  transports: z.array(z.enum(NETWORK_TRANSPORT_NAMES, {
    error: `must list only ${NETWORK_TRANSPORT_NAMES.map((name) => `'${name}'`).join(', ')}`
  })).min(1, 'must name at least one transport').optional(),
  protocols: z.unknown().superRefine((value, ctx) => {
    if (value === undefined) return
    const error = protocolListError(value)
    if (error !== null) ctx.addIssue({ code: 'custom', message: error })
  }).optional() as z.ZodType<ProtocolOption[] | undefined>,
  longPollTimeout: ms.optional(),
  allowStatefulReconnects: z.boolean({ error: 'must be a boolean' }).optional(),
  getUserId: z.custom<(request: FastifyRequest) => string | null | undefined>((v) => typeof v === 'function', {
    error: 'must be a function (request) => string | undefined'
  }).optional(),
  disconnectTimeout: ms.optional(),
  clientResultTimeout: ms.optional(),
  applicationMaxBufferSize: bytes.optional(),
  maximumSendBufferSize: bytes.optional(),
  allowedOrigins: z.array(z.string({ error: 'must list origins as strings' }), { error: 'must be an array of origins' }).optional(),
  rateLimit: rateLimitSchema.optional(),
  maximumMessageDepth: count.max(MAX_VALUE_DEPTH, `must be at most ${MAX_VALUE_DEPTH}`).optional()
}

const hubOptionsSchema = z.strictObject(hubOptionsShape)

const pluginOptionsSchema = z.strictObject({
  ...hubOptionsShape,
  asyncapi: z.object({
    path: z.string().startsWith('/', 'must start with /'),
    info: z.object({}).loose().optional()
  }, { error: 'must be { path, info? }' }).optional(),
  explorer: z.strictObject({
    path: z.string().startsWith('/', 'must start with /'),
    authorize: z.custom<(request: FastifyRequest) => boolean | Promise<boolean>>((v) => typeof v === 'function', {
      error: 'must be a function (request) => boolean'
    }).optional()
  }, { error: 'must be { path, authorize? }' }).optional(),
  telemetry: z.union([z.literal(false), z.object({}).loose()], { error: 'must be false or { tracerProvider?, meterProvider? }' }).optional(),
  backplane: z.custom<Backplane>(isBackplane, {
    error: 'must be a backplane (publish, subscribe, unsubscribe, close), e.g. redisBackplane({ redis })'
  }).optional(),
  connectionTokenSecret: z.string({ error: 'must be a string' }).min(16, 'must be at least 16 characters').optional()
})

function fail (where: string, error: z.ZodError, options: Record<string, unknown>): never {
  const issue = error.issues[0]!
  const name = issue.path.length > 0 ? String(issue.path[0]) : undefined
  const keys = issue.code === 'unrecognized_keys' ? issue.keys.map((k) => `"${k}"`).join(', ') : ''
  const message = issue.code === 'unrecognized_keys'
    ? (name === undefined ? `unknown option ${keys}` : `option "${name}" has unknown key ${keys}`)
    : `option "${name}" ${issue.message}; got ${describeValue(options[name!])}`
  throw new codes.SIGNALR_ERR_INVALID_OPTION(where, message)
}

function resolve (base: ResolvedHubOptions, overrides: HubOptions): ResolvedHubOptions {
  const out: Record<string, unknown> = { ...base }
  for (const [key, value] of Object.entries(overrides)) {
    if (value !== undefined) out[key] = value
  }
  return Object.freeze(out) as ResolvedHubOptions
}

/** Validates the options given to `register`, applying SignalR's defaults. */
export function resolvePluginOptions (options: unknown): ResolvedHubOptions {
  // Fastify passes its own register options (prefix, logLevel, ...) through to the plugin.
  const { prefix: _p, logLevel: _l, logSerializers: _ls, ...own } = (options ?? {}) as Record<string, unknown>
  const parsed = pluginOptionsSchema.safeParse(own)
  if (!parsed.success) fail('register', parsed.error, own)
  const { backplane: _b, connectionTokenSecret: _s, telemetry: _t, asyncapi: _a, explorer: _e, ...hubOptions } = own
  return resolve(defaults, hubOptions as HubOptions)
}

/** Merges `mapHub` options over the plugin's into the frozen per-hub options. */
export function resolveHubOptions (base: ResolvedHubOptions, options: unknown, path: string): ResolvedHubOptions {
  const parsed = hubOptionsSchema.safeParse(options ?? {})
  if (!parsed.success) fail(`mapHub('${path}')`, parsed.error, (options ?? {}) as Record<string, unknown>)
  return resolve(base, (options ?? {}) as HubOptions)
}
