/** fastify-signalr with the MessagePack protocol over WebSockets (hub in ./signalr-hub.ts). */
import { serveBenchHub } from './signalr-hub.js'

await serveBenchHub('messagepack')
