import { codes } from './errors.js'
import { transportEntry } from './transports/registry.js'

// The few OpenTelemetry API shapes used here, written out so that our public
// types never require @opentelemetry/api (it is an optional peer dependency).
type Attributes = Record<string, string | number | boolean | undefined>
interface SpanContext { traceId: string, spanId: string, traceFlags: number }
interface Span {
  spanContext (): SpanContext
  setAttribute (key: string, value: string | number | boolean): unknown
  setStatus (status: { code: number, message?: string }): unknown
  recordException (exception: Error): void
  end (): void
}
interface Tracer {
  startSpan (name: string, options?: { kind?: number, attributes?: Attributes, links?: Array<{ context: SpanContext }> }): Span
}
interface Counter { add (value: number, attributes?: Attributes): void }
interface Histogram { record (value: number, attributes?: Attributes): void }
interface InstrumentOptions { unit?: string, description?: string }
interface ObservableResult { observe (value: number, attributes?: Attributes): void }
interface ObservableCounter { addCallback (callback: (result: ObservableResult) => void): void }
interface Meter {
  createObservableCounter (name: string, options?: InstrumentOptions): ObservableCounter
  createCounter (name: string, options?: InstrumentOptions): Counter
  createUpDownCounter (name: string, options?: InstrumentOptions): Counter
  createHistogram (name: string, options?: InstrumentOptions): Histogram
}
export interface TracerProvider { getTracer (name: string, version?: string): Tracer }
export interface MeterProvider { getMeter (name: string, version?: string): Meter }
interface Api {
  trace: { getTracerProvider (): TracerProvider }
  metrics: { getMeterProvider (): MeterProvider }
  SpanKind: { SERVER: number }
  SpanStatusCode: { ERROR: number }
}

/** Plugin option `telemetry`: providers to use, or false to turn it off. */
export interface TelemetryOptions {
  tracerProvider?: TracerProvider
  meterProvider?: MeterProvider
}

/** How a connection ended, with ASP.NET Core's attribute values. */
export type ConnectionStatus = 'normal_closure' | 'timeout' | 'app_shutdown'

/** A backplane's running totals, read whenever metrics are collected. */
export interface BackplaneCounters {
  /** Messages handed to the bus. */
  published: number
  /** Messages that arrived from the bus. */
  received: number
  /** Messages that could not be published (counted by the publishing server). */
  dropped: number
  /** Arrived payloads from other publishers that were decoded (a server drops its own unread). */
  decoded: number
  /** Arrived payloads that were not a valid envelope (counted and ignored). */
  malformed: number
  /** Times the subscriber connection was lost (messages sent meanwhile are lost uncounted). */
  subscriberGaps?: number
}

const BACKPLANE_COUNTERS: ReadonlyArray<[keyof BackplaneCounters, string, string]> = [
  ['published', 'signalr.backplane.published', 'Messages this server published on the scale-out backplane.'],
  ['received', 'signalr.backplane.received', 'Messages this server received from the scale-out backplane.'],
  ['dropped', 'signalr.backplane.dropped', 'Messages the backplane could not publish (an outage): lost for the other servers.'],
  ['decoded', 'signalr.backplane.decoded', 'Payloads from other publishers this server decoded (its own are dropped unread).'],
  ['malformed', 'signalr.backplane.malformed', 'Payloads from the backplane that were not a valid envelope, ignored.'],
  ['subscriberGaps', 'signalr.backplane.subscriber_gaps', 'Times the backplane subscriber lost its connection; what was published meanwhile is lost.']
]

/** One connection's telemetry: its span (linked from each invocation span) and its start time. */
export interface ConnectionTelemetry {
  readonly span: Span
  readonly started: number
  readonly transport: string
}

/**
 * Metrics and traces under the names dashboards know: ASP.NET Core's
 * `signalr.server.active_connections` and `signalr.server.connection.duration`
 * with `signalr.connection.status` and `signalr.transport`, invocation counts
 * and durations per method, and one span per invocation (`rpc.system =
 * signalr`) linked to its connection's span. Built only when
 * `@opentelemetry/api` is installed; without it nothing is loaded or measured.
 */
export class Telemetry {
  private readonly api: Api
  private readonly tracer: Tracer
  private readonly activeConnections: Counter
  private readonly connectionDuration: Histogram
  private readonly invocations: Counter
  private readonly invocationDuration: Histogram
  private readonly meter: Meter

  constructor (api: Api, tracer: Tracer, meter: Meter) {
    this.api = api
    this.tracer = tracer
    this.meter = meter
    this.activeConnections = meter.createUpDownCounter('signalr.server.active_connections', {
      unit: '{connection}', description: 'Number of connections that are currently active on the server.'
    })
    this.connectionDuration = meter.createHistogram('signalr.server.connection.duration', {
      unit: 's', description: 'The duration of connections on the server.'
    })
    this.invocations = meter.createCounter('signalr.server.invocations', {
      unit: '{invocation}', description: 'Hub method invocations.'
    })
    this.invocationDuration = meter.createHistogram('signalr.server.invocation.duration', {
      unit: 's', description: 'The duration of hub method invocations.'
    })
  }

  /**
   * Exports a backplane's counters (`signalr.backplane.*`, attribute
   * `signalr.backplane` = its kind), read from `read` at each collection.
   */
  observeBackplane (kind: string, read: () => BackplaneCounters): void {
    const attributes = { 'signalr.backplane': kind }
    for (const [key, name, description] of BACKPLANE_COUNTERS) {
      this.meter.createObservableCounter(name, { unit: '{message}', description }).addCallback((result) => {
        const value = read()[key]
        if (value !== undefined) result.observe(value, attributes)
      })
    }
  }

  connectionOpened (hub: string, connectionId: string, transport: string): ConnectionTelemetry {
    const transportValue = transportEntry(transport).telemetry
    this.activeConnections.add(1, { 'signalr.transport': transportValue })
    const span = this.tracer.startSpan('signalr.connection', {
      kind: this.api.SpanKind.SERVER,
      attributes: { 'rpc.system': 'signalr', 'rpc.service': hub, 'signalr.connection.id': connectionId, 'signalr.transport': transportValue }
    })
    return { span, started: performance.now(), transport: transportValue }
  }

  connectionClosed (connection: ConnectionTelemetry, status: ConnectionStatus, error: Error | undefined): void {
    const attributes: Attributes = { 'signalr.transport': connection.transport, 'signalr.connection.status': status }
    this.activeConnections.add(-1, { 'signalr.transport': connection.transport })
    this.connectionDuration.record((performance.now() - connection.started) / 1000, attributes)
    if (error !== undefined) connection.span.recordException(error)
    connection.span.setAttribute('signalr.connection.status', status)
    connection.span.end()
  }

  invocationStarted (hub: string, method: string, connectionId: string, connection: ConnectionTelemetry | null): Span {
    return this.tracer.startSpan(`${hub}/${method}`, {
      kind: this.api.SpanKind.SERVER,
      attributes: { 'rpc.system': 'signalr', 'rpc.service': hub, 'rpc.method': method, 'signalr.connection.id': connectionId },
      links: connection !== null ? [{ context: connection.span.spanContext() }] : []
    })
  }

  invocationEnded (span: Span, hub: string, method: string, durationMs: number, error: unknown): void {
    const attributes: Attributes = { 'rpc.system': 'signalr', 'rpc.service': hub, 'rpc.method': method }
    if (error !== undefined) {
      attributes['error.type'] = error instanceof Error ? error.name : 'Error'
      span.setStatus({ code: this.api.SpanStatusCode.ERROR, message: error instanceof Error ? error.message : String(error) })
      if (error instanceof Error) span.recordException(error)
    }
    this.invocations.add(1, attributes)
    this.invocationDuration.record(durationMs / 1000, attributes)
    span.end()
  }
}

/** Loads `@opentelemetry/api` if it is installed (an optional peer dependency). */
export async function loadTelemetry (option: TelemetryOptions | false | undefined): Promise<Telemetry | null> {
  if (option === false) return null
  let api: Api
  try {
    // Loaded by name at run time only: nothing of it is needed when telemetry is off.
    const name = '@opentelemetry/api'
    api = await import(name) as Api
  } catch {
    if (option !== undefined) {
      throw new codes.SIGNALR_ERR_INVALID_OPTION('register', 'option "telemetry" needs the @opentelemetry/api package')
    }
    return null
  }
  const tracerProvider = option?.tracerProvider ?? api.trace.getTracerProvider()
  const meterProvider = option?.meterProvider ?? api.metrics.getMeterProvider()
  // With the API installed but no SDK registered everything would be a no-op:
  // stay on the fast path then, instead of paying for spans nobody records.
  if (option === undefined && isNoop(tracerProvider) && isNoop(meterProvider)) return null
  return new Telemetry(api, tracerProvider.getTracer('fastify-signalr'), meterProvider.getMeter('fastify-signalr'))
}

function isNoop (provider: object): boolean {
  const delegate = (provider as { getDelegate?: () => object }).getDelegate?.() ?? provider
  return delegate.constructor.name.startsWith('Noop')
}
