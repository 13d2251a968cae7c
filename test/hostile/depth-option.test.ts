// maximumMessageDepth is validated like every other option, for the plugin and per hub.
import Fastify from 'fastify'
import t, { type Test } from 'tap'
import { z } from 'zod'
import signalr, { defineHub, type SignalRPluginOptions } from '../../lib/index.js'

const hub = defineHub({ methods: { Echo: { args: [z.unknown()], handler: (_hub, v) => v } } })

/** Registers the plugin on a fresh app (closed in teardown) with options the types may refuse. */
async function registerWith (t: Test, options: Record<string, unknown>): Promise<void> {
  const app = Fastify()
  t.teardown(() => app.close())
  await app.register(signalr, options as SignalRPluginOptions)
}

t.test('maximumMessageDepth accepts 1 to 512 and refuses anything else, naming the option', async (t) => {
  for (const good of [1, 64, 512]) {
    await t.resolves(registerWith(t, { maximumMessageDepth: good }), `${good} is accepted`)
  }
  for (const bad of [0, -1, 1.5, 513, '64', null]) {
    await t.rejects(registerWith(t, { maximumMessageDepth: bad }),
      { code: 'SIGNALR_ERR_INVALID_OPTION', message: /option "maximumMessageDepth"/ }, `${JSON.stringify(bad)} is refused`)
  }
  const app = Fastify()
  t.teardown(() => app.close())
  await app.register(signalr)
  t.throws(() => { app.mapHub('/h', hub, { maximumMessageDepth: 1000 }) },
    { message: /mapHub\('\/h'\): option "maximumMessageDepth" must be at most 512/ }, 'per hub too')
})
