import { Writable } from 'node:stream'
import t from 'tap'
import { z } from 'zod'
import { defineHub, HubError } from '../lib/index.js'
import { startApp } from './helpers/app.js'
import { signalR } from './helpers/clients.js'
import { invocation, negotiateRaw, rawConnect, upgradeStatus } from './helpers/raw.js'

/** Keeps every negotiate answer the official client receives, to learn its secret token. */
class RecordingHttpClient extends signalR.DefaultHttpClient {
  readonly negotiations: Array<{ connectionId: string, connectionToken: string }> = []

  override async send (request: signalR.HttpRequest): Promise<signalR.HttpResponse> {
    const response = await super.send(request)
    if (request.url?.includes('/negotiate') === true && typeof response.content === 'string') {
      this.negotiations.push(JSON.parse(response.content) as { connectionId: string, connectionToken: string })
    }
    return response
  }
}

const hub = defineHub({
  name: 'logged',
  methods: {
    Add: { args: [z.number(), z.number()], handler: (_hub, a, b) => a + b },
    Say: { args: [z.string()], handler (hub, s) { hub.log.info({ said: s }, 'x') } },
    Fail: { args: [], handler () { throw new HubError('visible') } },
    Crash: { args: [], handler () { throw new Error('hidden') } }
  },
  onConnected (hub) { hub.log.debug('connected hook') },
  onDisconnected (hub, error) { hub.log.debug({ err: error }, 'disconnected hook') }
})

t.test('the connection token never reaches the logs; the public id does', async (t) => {
  const lines: string[] = []
  const stream = new Writable({
    write (chunk: Buffer, _encoding, done) {
      lines.push(chunk.toString('utf8'))
      done()
    }
  })
  const { baseUrl, wsUrl } = await startApp(t, (app) => { app.mapHub('/hub', hub) }, {}, { logger: { level: 'trace', stream } })

  // An official client session: negotiate, invocations, errors, a clean stop.
  const httpClient = new RecordingHttpClient(signalR.NullLogger.instance)
  const official = new signalR.HubConnectionBuilder()
    .withUrl(`${baseUrl}/hub`, { transport: signalR.HttpTransportType.WebSockets, httpClient })
    .configureLogging(signalR.LogLevel.None)
    .build()
  t.teardown(() => official.stop())
  await official.start()
  const officialId = official.connectionId!
  t.equal(await official.invoke('Add', 1, 2), 3)
  await official.invoke('Say', 'hello')
  await t.rejects(official.invoke('Fail'))
  await t.rejects(official.invoke('Crash'))
  await t.rejects(official.invoke('Add', 'one', 2), /Error binding arguments/)
  await t.rejects(official.invoke('Missing'))
  await official.stop()

  // The same by hand, ending with a dropped socket and a reuse of the dead token.
  const negotiated = await negotiateRaw(`${baseUrl}/hub`)
  const rawToken = negotiated.body.connectionToken as string
  const rawId = negotiated.body.connectionId as string
  const raw = await rawConnect(t, `${wsUrl}/hub?id=${rawToken}`, { handshake: true })
  raw.send(invocation('Crash', [], '1'))
  t.match(await raw.next(), { type: 3, invocationId: '1' })
  raw.ws.terminate()
  await raw.closed
  // The server may still be tearing the connection down: 404 or 409 are both refusals.
  t.not((await upgradeStatus(`${wsUrl}/hub?id=${rawToken}`)).statusCode, 101)

  t.equal(httpClient.negotiations.length, 1)
  const officialToken = httpClient.negotiations[0]!.connectionToken
  t.equal(httpClient.negotiations[0]!.connectionId, officialId)
  t.not(officialToken, officialId, 'the token and the public id differ')

  const all = lines.join('')
  t.ok(lines.some((line) => line.includes('"url":"/hub?id=[redacted]"')), 'the upgrade requests were logged, redacted')
  t.notOk(all.includes(officialToken), 'the official client\'s token appears in no log line')
  t.notOk(all.includes(rawToken), 'the raw client\'s token appears in no log line')
  t.ok(all.includes(officialId), 'the official client\'s public id is logged')
  t.ok(all.includes(rawId), 'the raw client\'s public id is logged')

  const parsed = lines.map((line) => JSON.parse(line) as Record<string, unknown>)
  const said = parsed.find((line) => line.msg === 'x')
  t.ok(said, 'hub.log.info from a method reaches the Fastify logger')
  t.match(said, { level: 30, said: 'hello', connectionId: officialId, hub: 'logged' })
  t.ok(parsed.some((line) => line.msg === 'disconnected hook' && line.connectionId === officialId),
    'the lifecycle hooks log through the same child logger')
})
