import type { FastifyBaseLogger } from 'fastify'
import type { Msg, NatsConnection, Status, Subscription } from '@nats-io/transport-node'
import { newBackplaneStats, type Backplane } from '../backplane/backplane.js'
import { dropCounter } from '../backplane/drop-log.js'
import { channelToSubject } from './subjects.js'

export interface NatsBackplaneOptions {
  /** A connected `@nats-io/transport-node` connection. It stays yours: the backplane never closes or drains it. */
  nats: NatsConnection
  /** Subject prefix (plain dot-separated tokens), so several apps can share one NATS. Default `signalr`. */
  prefix?: string
  /** ms `publishCounted` waits for a subscriber's acknowledgement. Default 5000. */
  requestTimeout?: number
  /** Logger for outages; the plugin passes the Fastify logger when absent. */
  log?: FastifyBaseLogger
}

export interface NatsBackplane extends Backplane {
  /** The `signalr.backplane` attribute of its telemetry counters. */
  readonly kind: 'nats'
  /** The subject prefix every channel is mapped under. */
  readonly subjectPrefix: string
  /** The NATS subject a backplane channel is published on. */
  subjectFor (channel: string): string
  /** Gives the backplane the app's logger (the plugin calls it). */
  setLogger (log: FastifyBaseLogger): void
}

const EMPTY = new Uint8Array(0)

interface Entry {
  subscription: Subscription
  onMessage: (payload: Buffer) => void
  /** Why the server ended this subscription (a permissions violation); nats.js has dropped it. */
  refused?: unknown
}

function isNoResponders (err: unknown): boolean {
  // Duck-typed so that this file needs no runtime import of the optional peer dependency.
  const check = (err as { isNoResponders?: () => boolean } | null)?.isNoResponders
  return typeof check === 'function' && check.call(err) === true
}

/**
 * The NATS backplane: one subject per channel, so NATS's interest-based
 * routing sends each message only to the servers that subscribed to it.
 *
 * nats.js queues what is published while it is disconnected and discards that
 * queue on each reconnect attempt, so the backplane watches the connection's
 * status and drops (and counts) publications itself while it is down. It
 * resubscribes by itself on reconnect.
 *
 * `publishCounted` is a request: every subscription answers a message that
 * carries a reply subject with an empty acknowledgement, and NATS answers "no
 * responders" when nobody is subscribed. NATS returns the first answer only,
 * so the count is 1 (at least one subscriber has it) or 0.
 */
export function createNatsBackplane (nc: NatsConnection, options: NatsBackplaneOptions & { prefix: string }): NatsBackplane {
  const prefix = options.prefix
  const requestTimeout = options.requestTimeout ?? 5000
  let log = options.log
  const stats = newBackplaneStats()
  const entries = new Map<string, Entry>()
  let connected = !nc.isClosed()
  let closed = false
  let reconnected: { promise: Promise<void>, resolve: () => void } | null = null
  /** Wakes whatever waits for the connection to come back (or to close for good). */
  const wake = (): void => {
    const waiting = reconnected
    reconnected = null
    waiting?.resolve()
  }

  const status = nc.status()
  void (async () => {
    for await (const event of status as AsyncIterable<Status>) {
      if (event.type === 'disconnect') {
        connected = false
      } else if (event.type === 'reconnect') {
        connected = true
        wake()
      } else if (event.type === 'close') {
        connected = false
        wake()
      }
    }
  })().catch((err: unknown) => { log?.debug({ err }, 'nats backplane status watch ended') })

  const drop = dropCounter(stats, 'nats', () => log)

  function nextReconnect (): Promise<void> {
    if (reconnected === null) {
      let resolve!: () => void
      const promise = new Promise<void>((_resolve) => { resolve = _resolve })
      reconnected = { promise, resolve }
    }
    return reconnected.promise
  }

  /** A PING/PONG round trip: the server has processed every SUB sent before it. Retried across a reconnect. */
  async function confirm (): Promise<void> {
    for (;;) {
      if (nc.isClosed()) throw new Error('The NATS connection is closed.')
      if (connected) {
        try {
          await nc.flush()
          return
        } catch (err) {
          if (nc.isClosed()) throw err
        }
      }
      await nextReconnect()
    }
  }

  function deliver (entry: Entry, msg: Msg): void {
    stats.received++
    // Acknowledge first: the requester only needs to know that a subscriber has it.
    if (msg.reply !== undefined && msg.reply !== '') {
      try {
        msg.respond(EMPTY)
      } catch (err) {
        log?.debug({ err }, 'nats backplane could not acknowledge a request')
      }
    }
    const data = msg.data
    try {
      entry.onMessage(Buffer.from(data.buffer, data.byteOffset, data.byteLength))
    } catch (err) {
      // Anyone may publish on these subjects: a message the hub cannot handle must not stop the others.
      log?.warn({ err, subject: msg.subject }, 'nats backplane: a message could not be handled')
    }
  }

  return {
    kind: 'nats',
    stats,
    subjectPrefix: prefix,
    subjectFor: (channel) => channelToSubject(prefix, channel),
    setLogger (logger) { log ??= logger },
    publish (channel, payload) {
      if (!connected) {
        drop()
        return
      }
      try {
        nc.publish(channelToSubject(prefix, channel), payload)
        stats.published++
      } catch (err) {
        drop(err)
      }
    },
    async publishCounted (channel, payload) {
      if (!connected) throw new Error('The NATS backplane is not connected.')
      stats.published++
      try {
        await nc.request(channelToSubject(prefix, channel), payload, { timeout: requestTimeout })
        return 1
      } catch (err) {
        if (isNoResponders(err)) return 0
        throw err
      }
    },
    async subscribe (channel, onMessage) {
      if (closed) throw new Error('The NATS backplane is closed.')
      let entry = entries.get(channel)
      if (entry !== undefined) {
        entry.onMessage = onMessage
      } else {
        const created = { onMessage } as Entry
        created.subscription = nc.subscribe(channelToSubject(prefix, channel), {
          callback: (err, msg) => {
            if (err !== null) {
              log?.warn({ err, channel }, 'nats backplane subscription failed')
              // nats.js has dropped the subscription: forget it, so that the next subscribe asks NATS again.
              created.refused = err
              if (entries.get(channel) === created) entries.delete(channel)
              return
            }
            deliver(created, msg)
          }
        })
        entry = created
        entries.set(channel, entry)
      }
      await confirm()
      // The server answers a SUB it refuses with -ERR before the PONG that confirms it.
      if (entry.refused !== undefined) throw entry.refused
    },
    async unsubscribe (channel) {
      const entry = entries.get(channel)
      if (entry === undefined) return
      entries.delete(channel)
      if (nc.isClosed()) return
      entry.subscription.unsubscribe()
      // Once the server has processed the UNSUB it routes nothing more here; before that, a request
      // would reach this connection, find no local subscription and wait for its timeout.
      if (connected) await nc.flush().catch(() => {})
    },
    async close () {
      closed = true
      ;(status as { stop?: () => void }).stop?.()
      wake()
      for (const channel of [...entries.keys()]) await this.unsubscribe(channel)
    }
  }
}
