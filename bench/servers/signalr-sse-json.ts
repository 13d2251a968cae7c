/** fastify-signalr with the JSON protocol over Server-Sent Events only (hub in ./signalr-hub.ts). */
import { serveBenchHub } from './signalr-hub.js'

await serveBenchHub('json', { transports: ['serverSentEvents'] })
