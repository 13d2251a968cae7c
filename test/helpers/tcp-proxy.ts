import { connect, createServer, type Socket } from 'node:net'
import type { Test } from 'tap'

export interface TcpProxy {
  /** The proxy's port on 127.0.0.1. */
  readonly port: number
  /**
   * A network failure only the client notices: every current client socket is
   * destroyed, while the server-side sockets stay open and simply go silent
   * (nothing is forwarded either way), as with a half-open TCP connection.
   */
  cutClientsOnly (): void
}

interface Pair { client: Socket, upstream: Socket }

/** A TCP proxy to 127.0.0.1:`targetPort`, closed with every socket in teardown. */
export async function startTcpProxy (t: Test, targetPort: number): Promise<TcpProxy> {
  const live = new Set<Pair>()
  const silent: Socket[] = []
  const server = createServer((client) => {
    const upstream = connect(targetPort, '127.0.0.1')
    const pair = { client, upstream }
    live.add(pair)
    client.on('error', () => {})
    upstream.on('error', () => {})
    client.pipe(upstream)
    upstream.pipe(client)
    const forget = (): void => { live.delete(pair) }
    client.once('close', forget)
    upstream.once('close', () => { forget(); client.destroy() })
  })
  await new Promise<void>((resolve) => { server.listen(0, '127.0.0.1', resolve) })
  t.teardown(async () => {
    for (const { client, upstream } of live) { client.destroy(); upstream.destroy() }
    for (const socket of silent) socket.destroy()
    await new Promise((resolve) => { server.close(resolve) })
  })
  return {
    port: (server.address() as { port: number }).port,
    cutClientsOnly () {
      for (const pair of live) {
        live.delete(pair)
        pair.client.unpipe(pair.upstream)
        pair.upstream.unpipe(pair.client)
        pair.upstream.pause()
        pair.upstream.removeAllListeners('close')
        pair.client.destroy()
        silent.push(pair.upstream)
      }
    }
  }
}
