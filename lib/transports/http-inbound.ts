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

/** What SSE and long polling share: the owner, and client data arriving as POST bodies. */
export abstract class HttpTransportBase {
  owner: TransportOwner | null = null
  readonly inbound = new HttpInbound()

  attach (owner: TransportOwner): void {
    this.owner = owner
  }

  /** Both HTTP transports carry whatever the protocol produced; nothing to switch. */
  setBinary (): void {}

  pause (): void {
    this.inbound.pause()
  }

  resume (): void {
    this.inbound.resume()
  }

  /** A POST body from the client; resolves when the POST may be answered. */
  receive (body: Buffer): Promise<void> | undefined {
    return this.inbound.deliver(this.owner, body)
  }
}
