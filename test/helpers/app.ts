import type { EventEmitter } from 'node:events'
import type { IncomingMessage } from 'node:http'
import Fastify, { type FastifyInstance, type FastifyServerOptions } from 'fastify'
import type { Test } from 'tap'
import type { WebSocket } from 'ws'
import signalr, { type SignalRPluginOptions } from '../../lib/index.js'

export interface TestApp {
  app: FastifyInstance
  /** http://127.0.0.1:PORT */
  baseUrl: string
  /** ws://127.0.0.1:PORT */
  wsUrl: string
}

/**
 * Builds an app with the plugin, lets `setup` map hubs and routes, listens on
 * 127.0.0.1 port 0 and closes the app in teardown.
 */
export async function startApp (
  t: Test,
  setup: (app: FastifyInstance) => void | Promise<void>,
  options: SignalRPluginOptions = {},
  fastifyOptions: FastifyServerOptions = {}
): Promise<TestApp> {
  // Clients in this process keep pre-connected sockets that never send a request;
  // Node would wait for them until its headers timeout, so close everything. Hub
  // connections have already been closed gracefully by then (the plugin's preClose).
  const app = Fastify({ forceCloseConnections: true, ...fastifyOptions })
  t.teardown(() => app.close())
  await app.register(signalr, options)
  await setup(app)
  await app.listen({ port: 0, host: '127.0.0.1' })
  const { port } = app.server.address() as { port: number }
  return { app, baseUrl: `http://127.0.0.1:${port}`, wsUrl: `ws://127.0.0.1:${port}` }
}

/**
 * Builds an app with the plugin that never listens (for `app.signalr.inject`
 * and `app.inject`), lets `setup` map hubs and routes, and closes it in teardown.
 */
export async function unlistenedApp (
  t: Test,
  setup: (app: FastifyInstance) => void | Promise<void>,
  options: SignalRPluginOptions = {}
): Promise<FastifyInstance> {
  const app = Fastify()
  t.teardown(() => app.close())
  await app.register(signalr, options)
  await setup(app)
  return app
}

/**
 * The server's open hub WebSockets, each with the port of its client, as the
 * shared ws server's 'connection' event reports them (hubs upgrade with
 * servers of their own, which track no clients). Call before clients connect.
 */
export function serverSockets (app: FastifyInstance): Map<WebSocket, number> {
  const open = new Map<WebSocket, number>()
  ;(app as unknown as { websocketServer: EventEmitter }).websocketServer.on('connection', (socket: WebSocket, request: IncomingMessage) => {
    open.set(socket, request.socket.remotePort!)
    socket.once('close', () => { open.delete(socket) })
  })
  return open
}
