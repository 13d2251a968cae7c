/**
 * The server of the soak run (bench/soak.ts): one hub over every transport
 * and both protocols, and GET /soak/heap, which runs a full GC (the driver
 * starts this process with --expose-gc) and answers heapUsed in bytes, so that
 * the driver samples what stays alive, not garbage waiting to be collected.
 */
import Fastify from 'fastify'
import { z } from 'zod'
import signalr, { defineHub } from '../../lib/index.js'
import { announce, driverControls, portFromArgs } from './common.js'

const seq = z.number().int().min(1)

const soak = defineHub({
  methods: {
    Broadcast: {
      args: [z.string(), seq],
      handler: (hub, sender, n) => hub.clients.all.send('b', sender, n)
    },
    GroupSend: {
      args: [z.string(), z.string(), seq],
      handler: (hub, group, sender, n) => hub.clients.group(group).send('g', group, sender, n)
    },
    Join: {
      args: [z.string()],
      handler: (hub, group) => hub.groups.add(hub.connectionId, group)
    },
    /**
     * Does nothing: its completion is written after every message queued for
     * the caller before it, so once the caller has it, all of those arrived.
     */
    Fence: { args: [], handler () {} }
  }
})

driverControls()
const app = Fastify({ logger: false })
await app.register(signalr)
app.mapHub('/hub', soak)
app.get('/soak/heap', async () => {
  const gc = (globalThis as { gc?: () => void }).gc
  if (gc === undefined) throw new Error('start the soak server with --expose-gc')
  gc()
  gc()
  return { heapUsed: process.memoryUsage().heapUsed }
})
await app.listen({ port: portFromArgs(), host: '127.0.0.1' })
announce((app.server.address() as { port: number }).port)
