import Fastify from 'fastify'
import t from 'tap'
import signalr from '../lib/index.js'
import { chat } from '../example-app/hubs/chat.js'
import { z } from 'zod'
import { clientStream, defineHub } from '../lib/index.js'

const tools = defineHub({
  name: 'tools',
  client: { Progress: [z.number().int()], Confirm: { args: [z.string()], returns: z.boolean() } },
  methods: {
    Add: { args: [z.number(), z.number()], returns: z.number(), handler: (_h, a, b) => a + b },
    Count: { args: [z.number().int().min(0)], stream: true, async * handler (_h, n) { for (let i = 0; i < n; i++) yield i } },
    Upload: { args: [z.string(), clientStream(z.object({ line: z.string() }))], async handler () { return 0 } },
    Parse: { args: [z.string().transform((s) => s.length)], handler: (_h, n) => n }
  }
})

t.test('the asyncapi option serves the document on a route', async (t) => {
  const app = Fastify()
  t.teardown(() => app.close())
  await app.register(signalr, { asyncapi: { path: '/docs/asyncapi.json', info: { title: 'Served' } } })
  app.mapHub('/chathub', chat)
  await app.ready()
  const doc = (await app.inject('/docs/asyncapi.json')).json() as any
  t.equal(doc.info.title, 'Served')
  t.same(Object.keys(doc.channels), ['chat'], 'hubs mapped after register are in it')
})

t.test('app.signalr.asyncapi() describes every mapped hub', async (t) => {
  const app = Fastify()
  t.teardown(() => app.close())
  await app.register(signalr)
  app.mapHub('/chathub', chat)
  app.register(async (scope) => { scope.mapHub('/tools', tools) }, { prefix: '/api' })
  app.get('/asyncapi.json', () => app.signalr.asyncapi({ title: 'Example', version: '2.0.0' }))
  await app.ready()

  const doc = (await app.inject('/asyncapi.json')).json() as any
  t.equal(doc.asyncapi, '3.0.0')
  t.same(doc.info, { title: 'Example', version: '2.0.0' })
  t.equal(doc.channels.chat.address, '/chathub')
  t.equal(doc.channels.tools.address, '/api/tools', 'the address includes the scope prefix')

  const send = doc.components.messages['chat.SendMessage']
  t.same(send.payload.prefixItems, [
    { type: 'string', minLength: 1, maxLength: 100 },
    { type: 'string', maxLength: 4000 }
  ], 'arguments from the zod schemas, in order')
  t.equal(doc.operations['chat.SendMessage'].action, 'receive')
  t.equal(doc.operations['chat.client.ReceiveMessage'].action, 'send', 'client methods are what the server sends')

  t.same(doc.components.messages['tools.Add']['x-signalr-result'], { type: 'number' })
  t.equal(doc.components.messages['tools.Count']['x-signalr-invocation'], 'stream')
  t.same(doc.components.messages['tools.Upload']['x-signalr-client-streams'][0].properties, { line: { type: 'string' } })
  t.same(doc.components.messages['tools.Parse'].payload.prefixItems, [{ type: 'string' }], 'arguments are described as clients send them (zod input)')
  t.same(doc.components.messages['tools.client.Confirm']['x-signalr-result'], { type: 'boolean' })
  t.equal(Object.keys(doc.operations).length, 3 + 1 + 4 + 2, 'each method once, though the table holds two keys per method')
})
