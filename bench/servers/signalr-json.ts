/** fastify-signalr with the JSON protocol over WebSockets (hub in ./signalr-hub.ts). */
import { serveBenchHub } from './signalr-hub.js'

await serveBenchHub('json')
