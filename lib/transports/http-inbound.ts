import type { TransportOwner } from './transport.js'

/**
 * Client-to-server data of the HTTP transports (SSE and long polling), which
 * arrives as POST bodies. While the connection has paused reading, the POST
 * is answered only once it resumes: the official client sends one POST at a
 * time, so this is its backpressure, like a paused WebSocket.
 */
export class HttpInbound {
  private paused = false
  private waiters: Array<() => void> = []

  pause (): void {
    this.paused = true
  }

  resume (): void {
    this.paused = false
    this.release()
  }

  /** Hands `body` to the connection; resolves when the POST may be answered. */
  deliver (owner: TransportOwner | null, body: Buffer): Promise<void> | undefined {
    owner?.onTransportData(body)
    if (!this.paused) return undefined
    return new Promise((resolve) => { this.waiters.push(resolve) })
  }

  /** Lets every waiting POST finish (on resume, or when the transport closes). */
  release (): void {
    const waiters = this.waiters
    if (waiters.length === 0) return
    this.waiters = []
    for (const resolve of waiters) resolve()
  }
}
