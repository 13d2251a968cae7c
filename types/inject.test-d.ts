import Fastify from 'fastify'
import type { HubConnection, IHubProtocol } from '@microsoft/signalr'
import signalr, { defineHub, type InjectOptions, type TransportName } from '../lib/index.js'
import type { Equal, Expect } from './helpers.js'

async function injectTypes (): Promise<void> {
  const app = Fastify()
  await app.register(signalr)

  const connection = await app.signalr.inject('/chathub')
  type _connection = Expect<Equal<typeof connection, HubConnection>>
  await app.signalr.inject('/chathub', { headers: { authorization: 'Bearer t' }, query: { room: 'a' }, protocol: 'messagepack' })
  type _protocol = Expect<Equal<InjectOptions['protocol'], 'json' | 'messagepack' | IHubProtocol | undefined>>

  // @ts-expect-error only json, messagepack or a client protocol object
  await app.signalr.inject('/chathub', { protocol: 'xml' })
  // @ts-expect-error header values are strings
  await app.signalr.inject('/chathub', { headers: { 'x-n': 1 } })
  // @ts-expect-error the path is required
  await app.signalr.inject()

  // The transports option names the network transports only.
  type _names = Expect<Equal<TransportName, 'webSockets' | 'serverSentEvents' | 'longPolling'>>
  // @ts-expect-error the in-memory transport is for inject, not an option value
  app.mapHub('/c', defineHub({ methods: {} }), { transports: ['inMemory'] })
}
void injectTypes
