import t from 'tap'
import { z } from 'zod'
import { clientStream, defineHub } from '../../lib/index.js'
import { typedHub } from '../../lib/client/index.js'
import { startApp } from '../helpers/app.js'
import { connect } from '../helpers/clients.js'

const hub = defineHub({
  client: { Notify: [z.string()], GetName: { args: [], returns: z.string() } },
  methods: {
    Add: { args: [z.number(), z.number()], returns: z.number(), handler: (_h, a, b) => a + b },
    Ping: { args: [z.string()], async handler (h, s) { await h.clients.caller.send('Notify', s) } },
    Counter: { args: [z.number()], stream: true, async * handler (h, n) { for (let i = 0; i < n && !h.signal.aborted; i++) { yield i; await new Promise((resolve) => setImmediate(resolve)) } } },
    Concat: { args: [clientStream(z.string())], async handler (_h, items) { let s = ''; for await (const i of items) s += i; return s } },
    Name: { args: [], handler: (h) => h.clients.caller.invoke('GetName') }
  }
})

t.test('typedHub calls the hub through the official client', async (t) => {
  const { baseUrl } = await startApp(t, (app) => { app.mapHub('/hub', hub) })
  const connection = await connect(t, `${baseUrl}/hub`)
  const typed = typedHub<typeof hub>(connection)
  t.equal(await typed.invoke.Add(2, 3), 5)

  const notified = new Promise<string>((resolve) => { typed.on.Notify((s) => { resolve(s) }) })
  await typed.send.Ping('hello')
  t.equal(await notified, 'hello')

  const items: number[] = []
  for await (const n of typed.stream.Counter(5)) items.push(n)
  t.same(items, [0, 1, 2, 3, 4])

  // Leaving the loop early cancels the stream on the server.
  const early: number[] = []
  for await (const n of typed.stream.Counter(1000)) {
    early.push(n)
    if (n === 2) break
  }
  t.same(early, [0, 1, 2])

  async function * letters (): AsyncGenerator<string> { yield 'a'; yield 'b'; yield 'c' }
  t.equal(await typed.invoke.Concat(letters()), 'abc', 'an AsyncIterable uploads as a client stream')

  const off = typed.on.GetName(() => 'ada')
  t.equal(await typed.invoke.Name(), 'ada')
  off()
  await t.rejects(typed.invoke.Name(), /Client didn't provide a result/)
  t.equal((typed.invoke as unknown as { then?: unknown }).then, undefined, 'the proxy is not a thenable')
})

t.test('a browser bundle of fastify-signalr/client holds no server code', async (t) => {
  const { build } = await import('esbuild')
  const result = await build({
    entryPoints: [new URL('../../lib/client/index.ts', import.meta.url).pathname],
    bundle: true,
    write: false,
    format: 'esm',
    platform: 'browser',
    // The official client is the app's own dependency, not ours to bundle.
    external: ['@microsoft/signalr'],
    metafile: true
  })
  const inputs = Object.keys(result.metafile.inputs)
  t.same(inputs.map((p) => p.replace(/^.*\/lib\//, 'lib/')), ['lib/client/index.ts'], 'only the client file itself is bundled')
  const code = result.outputFiles[0]!.text
  for (const serverOnly of ['fastify', 'zod', 'msgpackr', 'ioredis', 'node:']) {
    t.notOk(code.includes(serverOnly), `no ${serverOnly} in the bundle`)
  }
  t.ok(code.length < 4000, `small bundle (${code.length} bytes)`)
})
