/**
 * A floor for connection setup through Fastify: @fastify/websocket routes the
 * upgrade through Fastify (its hooks, a route), and the route answers the
 * first message with the SignalR handshake answer `{}` + RS without looking
 * at it. What any hub that lets Fastify's hooks see the upgrade pays before
 * doing any hub work (bench/instructions.ts --connect).
 */
import websocket from '@fastify/websocket'
import Fastify from 'fastify'
import { announce, driverControls, portFromArgs } from './common.js'

const HANDSHAKE_ANSWER = '{}\u001e'

driverControls()
const app = Fastify({ logger: false })
await app.register(websocket, { options: { perMessageDeflate: false, clientTracking: false } })
app.get('/hub', { websocket: true }, (socket) => {
  socket.once('message', () => { socket.send(HANDSHAKE_ANSWER) })
})
await app.listen({ port: portFromArgs(), host: '127.0.0.1' })
announce((app.server.address() as { port: number }).port)
