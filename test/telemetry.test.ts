import { MeterProvider, MetricReader } from '@opentelemetry/sdk-metrics'
import { BasicTracerProvider, InMemorySpanExporter, SimpleSpanProcessor } from '@opentelemetry/sdk-trace-base'
import t from 'tap'
import { z } from 'zod'
import { defineHub, HubError } from '../lib/index.js'
import { startApp } from './helpers/app.js'
import { connect } from './helpers/clients.js'
import { rawConnect } from './helpers/raw.js'

/** A reader the test collects from on demand. */
class TestReader extends MetricReader {
  protected async onShutdown (): Promise<void> {}
  protected async onForceFlush (): Promise<void> {}
}

const hub = defineHub({
  name: 'chat',
  methods: {
    Add: { args: [z.number(), z.number()], handler: (_h, a, b) => a + b },
    Fail: { args: [], handler () { throw new HubError('no') } },
    // JavaScript lets a handler throw anything: a string has no name or stack.
    // eslint-disable-next-line no-throw-literal
    FailPlain: { args: [], handler () { throw 'plain failure' } }
  }
})

async function metricsByName (reader: TestReader): Promise<Map<string, any>> {
  const { resourceMetrics } = await reader.collect()
  const out = new Map<string, any>()
  for (const scope of resourceMetrics.scopeMetrics) {
    for (const metric of scope.metrics) out.set(metric.descriptor.name, metric)
  }
  return out
}

t.test('metrics and spans with the official names', async (t) => {
  const exporter = new InMemorySpanExporter()
  const tracerProvider = new BasicTracerProvider({ spanProcessors: [new SimpleSpanProcessor(exporter)] })
  const reader = new TestReader()
  const meterProvider = new MeterProvider({ readers: [reader] })
  const { baseUrl } = await startApp(t, (app) => { app.mapHub('/chathub', hub) }, { telemetry: { tracerProvider, meterProvider } })

  const a = await connect(t, `${baseUrl}/chathub`)
  const b = await connect(t, `${baseUrl}/chathub`)
  let metrics = await metricsByName(reader)
  const active = metrics.get('signalr.server.active_connections')
  t.equal(active.dataPoints[0].value, 2, 'two active connections')
  t.same(active.dataPoints[0].attributes, { 'signalr.transport': 'web_sockets' })

  t.equal(await a.invoke('Add', 1, 2), 3)
  await t.rejects(a.invoke('Fail'))
  const spans = exporter.getFinishedSpans()
  const add = spans.find((s) => s.name === 'chat/Add')!
  t.ok(add, 'a span per invocation')
  t.same(
    { system: add.attributes['rpc.system'], service: add.attributes['rpc.service'], method: add.attributes['rpc.method'] },
    { system: 'signalr', service: 'chat', method: 'Add' })
  t.equal(add.attributes['signalr.connection.id'], a.connectionId)
  t.equal(add.links.length, 1, 'linked to the connection span')
  const fail = spans.find((s) => s.name === 'chat/Fail')!
  t.equal(fail.status.code, 2 /* ERROR */)

  await b.stop()
  await a.stop()
  // The server side closes after the client; wait until both connection spans have ended.
  for (let i = 0; i < 200 && exporter.getFinishedSpans().filter((s) => s.name === 'signalr.connection').length < 2; i++) {
    await new Promise((resolve) => setImmediate(resolve))
  }
  metrics = await metricsByName(reader)
  t.equal(metrics.get('signalr.server.active_connections').dataPoints[0].value, 0, 'back to zero')
  const duration = metrics.get('signalr.server.connection.duration')
  t.equal(duration.dataPoints[0].value.count, 2, 'two connection durations recorded')
  t.same(duration.dataPoints[0].attributes, { 'signalr.transport': 'web_sockets', 'signalr.connection.status': 'normal_closure' })
  const invocations = metrics.get('signalr.server.invocations')
  const byMethod = Object.fromEntries(invocations.dataPoints.map((p: any) => [`${p.attributes['rpc.method']}${p.attributes['error.type'] !== undefined ? ':' + p.attributes['error.type'] : ''}`, p.value]))
  t.same(byMethod, { Add: 1, 'Fail:HubError': 1 })
  t.ok(metrics.get('signalr.server.invocation.duration'))
  t.equal(exporter.getFinishedSpans().filter((s) => s.name === 'signalr.connection').length, 2)
})

t.test('telemetry: false turns it off; without an SDK nothing is measured', async (t) => {
  const exporter = new InMemorySpanExporter()
  const tracerProvider = new BasicTracerProvider({ spanProcessors: [new SimpleSpanProcessor(exporter)] })
  const { baseUrl } = await startApp(t, (app) => { app.mapHub('/chathub', hub) }, { telemetry: false })
  const a = await connect(t, `${baseUrl}/chathub`)
  t.equal(await a.invoke('Add', 1, 1), 2)
  t.equal(exporter.getFinishedSpans().length, 0)
  void tracerProvider
})

t.test('a thrown non-Error and a connection that ends with an error are recorded', async (t) => {
  const exporter = new InMemorySpanExporter()
  const tracerProvider = new BasicTracerProvider({ spanProcessors: [new SimpleSpanProcessor(exporter)] })
  const reader = new TestReader()
  const meterProvider = new MeterProvider({ readers: [reader] })
  const { baseUrl, wsUrl } = await startApp(t, (app) => { app.mapHub('/chathub', hub) }, { telemetry: { tracerProvider, meterProvider } })

  const client = await connect(t, `${baseUrl}/chathub`)
  await t.rejects(client.invoke('FailPlain'))
  const plain = exporter.getFinishedSpans().find((s) => s.name === 'chat/FailPlain')!
  t.same({ code: plain.status.code, message: plain.status.message }, { code: 2 /* ERROR */, message: 'plain failure' }, 'the span status carries the thrown text')
  t.same(plain.events, [], 'no exception event: there is no Error to record')
  const invocations = (await metricsByName(reader)).get('signalr.server.invocations')
  t.ok(invocations.dataPoints.some((p: any) => p.attributes['rpc.method'] === 'FailPlain' && p.attributes['error.type'] === 'Error'),
    "counted with error.type 'Error'")

  // A client that breaks the protocol: the server closes its connection with an error.
  const raw = await rawConnect(t, `${wsUrl}/chathub`, { handshake: true })
  raw.sendText('{ this is not json\u001e')
  await raw.closed
  let span
  for (let i = 0; i < 200 && span === undefined; i++) {
    span = exporter.getFinishedSpans().find((s) => s.name === 'signalr.connection' && s.events.length > 0)
    if (span === undefined) await new Promise((resolve) => setImmediate(resolve))
  }
  t.ok(span, 'the connection span has ended')
  t.equal(span!.events[0]!.name, 'exception', 'with the error recorded as an exception event')
  t.match(span!.events[0]!.attributes, { 'exception.type': 'SIGNALR_ERR_PROTOCOL', 'exception.message': /\S/ }, 'the protocol error, by its code')
})
