/** fastify-signalr with the MessagePack protocol over long polling only (hub in ./signalr-hub.ts). */
import { serveBenchHub } from './signalr-hub.js'

await serveBenchHub('messagepack', { transports: ['longPolling'] })
