/** fastify-signalr with the JSON protocol over long polling only (hub in ./signalr-hub.ts). */
import { serveBenchHub } from './signalr-hub.js'

await serveBenchHub('json', { transports: ['longPolling'] })
