/**
 * The fastify-signalr benchmark server, shared by both protocols so that the
 * JSON and MessagePack figures differ only by the protocol: the hub a user
 * would write for these workloads, zod validation included.
 */
import Fastify from 'fastify'
import { z } from 'zod'
import signalr, { defineHub, type ProtocolName, type SignalRPluginOptions } from '../../lib/index.js'
import { announce, driverControls, portFromArgs } from './common.js'

const bench = defineHub({
  methods: {
    Echo: { args: [z.string()], handler: (_hub, s) => s },
    Broadcast: {
      args: [z.string()],
      handler: (hub, payload) => hub.clients.all.send('msg', payload)
    },
    GroupSend: {
      args: [z.string(), z.string()],
      handler: (hub, group, payload) => hub.clients.group(group).send('msg', payload)
    },
    Join: {
      args: [z.string()],
      handler: (hub, group) => hub.groups.add(hub.connectionId, group)
    }
  }
})

/**
 * Serves the hub at /hub over WebSockets with `protocol` as the only protocol
 * offered; `extra` adds plugin options (the Redis backplane of bench/redis.ts).
 */
export async function serveBenchHub (protocol: ProtocolName, extra: SignalRPluginOptions = {}): Promise<void> {
  driverControls()
  const app = Fastify({ logger: false })
  await app.register(signalr, { transports: ['webSockets'], protocols: [protocol], ...extra })
  app.mapHub('/hub', bench)
  await app.listen({ port: portFromArgs(), host: '127.0.0.1' })
  announce((app.server.address() as { port: number }).port)
}
