import { MessageType, type HubMessage } from '../protocol/messages.js'

/**
 * Running totals of one hub's traffic on this server, read by the explorer's
 * monitor (which turns them into rates). Plain counters: a few increments per
 * message, no timers, no allocation.
 */
export class HubStats {
  /** Hub messages taken from clients (keep-alive pings excluded). */
  received = 0
  /** Hub messages written to clients (keep-alive pings excluded). */
  sent = 0
  /** Invocations and stream invocations taken from clients. */
  invocations = 0
  /** Completions sent with an error (failed invocations and streams). */
  errors = 0
  /** Connections closed because they read too slowly (`maximumSendBufferSize`). */
  slowClientCloses = 0

  onReceived (message: HubMessage): void {
    const type = message.type
    if (type === MessageType.Ping) return
    this.received++
    if (type === MessageType.Invocation || type === MessageType.StreamInvocation) this.invocations++
  }

  onSent (message: HubMessage): void {
    this.sent++
    if (message.type === MessageType.Completion && message.error !== undefined) this.errors++
  }
}
