/**
 * Socket.IO 4, as its users would write these workloads: acknowledgements for
 * echo, io.emit for broadcast, rooms for groups. One transport only (the
 * WebSocket, or HTTP long polling against fastify-signalr's HTTP transports)
 * and no compression, so it is compared on the same footing as the others.
 */
import { createServer } from 'node:http'
import { Server } from 'socket.io'
import { announce, driverControls, portFromArgs } from './common.js'

export function serveSocketIo (transport: 'websocket' | 'polling'): void {
  driverControls()
  const server = createServer()
  const io = new Server(server, {
    transports: [transport],
    // Pings still go every 25 s, as by default; the longer wait for the pong
    // only keeps an overloaded shared machine from dropping sessions mid-run
    // (over polling the pong queues behind slow POSTs). It costs no work.
    pingTimeout: 60_000,
    perMessageDeflate: false,
    httpCompression: false,
    serveClient: false
  })

  io.on('connection', (socket) => {
    socket.on('echo', (s: string, ack: (s: string) => void) => {
      if (typeof ack === 'function') ack(s)
    })
    socket.on('broadcast', (payload: string) => {
      io.emit('msg', payload)
    })
    socket.on('group', (group: string, payload: string) => {
      io.to(group).emit('msg', payload)
    })
    socket.on('join', (group: string, ack: () => void) => {
      void socket.join(group)
      if (typeof ack === 'function') ack()
    })
  })

  server.listen(portFromArgs(), '127.0.0.1', () => {
    announce((server.address() as { port: number }).port)
  })
}
