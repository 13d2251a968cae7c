import cluster from 'node:cluster'
import type { FastifyBaseLogger } from 'fastify'
import { newBackplaneStats, type Backplane } from '../backplane/backplane.js'
import { dropCounter } from '../backplane/drop-log.js'
import { fromWire, isTagged, TAG, toWire, type ToPrimary } from './protocol.js'

export interface ClusterBackplaneOptions {
  /** ms to wait for the primary to confirm a subscription or count a publication. Default 10000. */
  requestTimeout?: number
  /**
   * Publications allowed in the IPC queue to the primary before further ones
   * are dropped (and counted) instead of queued. Default 10000.
   */
  maxPending?: number
  /** Logger for drops; the plugin passes the Fastify logger when absent. */
  log?: FastifyBaseLogger
}

export interface ClusterBackplane extends Backplane {
  /** The `signalr.backplane` attribute of its telemetry counters. */
  readonly kind: 'cluster'
  /** Gives the backplane the app's logger (the plugin calls it). */
  setLogger (log: FastifyBaseLogger): void
}

interface Waiting {
  resolve (count: number): void
  reject (err: Error): void
  timer: NodeJS.Timeout
}

/**
 * The backplane of a `node:cluster` worker: every publication goes over IPC to
 * the primary, which relays it only to the workers subscribed to its channel
 * (see `clusterPrimary()`). No Redis, no extra process: the servers are the
 * workers of one machine.
 */
export function clusterBackplane (options: ClusterBackplaneOptions = {}): ClusterBackplane {
  if (!cluster.isWorker || typeof process.send !== 'function') {
    throw new Error('clusterBackplane() runs in a node:cluster worker; the primary runs clusterPrimary()')
  }
  const requestTimeout = options.requestTimeout ?? 10_000
  const maxPending = options.maxPending ?? 10_000
  let log = options.log
  /** Whether Buffers cross our IPC channel as they are: learnt from the first answer of the primary. */
  let advanced = false
  const stats = newBackplaneStats()
  const handlers = new Map<string, (payload: Buffer) => void>()
  const waiting = new Map<number, Waiting>()
  let nextId = 0
  let pending = 0
  let listening = false

  const send = (message: ToPrimary, onSent?: (err: Error | null) => void): void => {
    process.send!(message, undefined, {}, onSent)
  }

  function onMessage (message: unknown): void {
    if (!isTagged(message)) return
    if (message[TAG] === 'msg') {
      const handler = handlers.get(message.channel as string)
      const payload = fromWire(message.payload)
      stats.received++
      if (handler === undefined || payload === null) return
      try {
        handler(payload)
      } catch (err) {
        // An exception here would be uncaught in the worker ('message' listener): log it and go on.
        log?.warn({ err, channel: message.channel }, 'cluster backplane: a message could not be handled')
      }
    } else if (message[TAG] === 'ack') {
      advanced = message.probe instanceof Uint8Array
      const entry = waiting.get(message.id as number)
      if (entry === undefined) return
      waiting.delete(message.id as number)
      clearTimeout(entry.timer)
      entry.resolve(message.count as number)
    }
  }

  function listen (): void {
    if (listening) return
    listening = true
    process.on('message', onMessage)
  }

  const drop = dropCounter(stats, 'cluster', () => log)

  /** Sends a request to the primary and resolves with its answer's count. */
  function ask (build: (id: number) => ToPrimary): Promise<number> {
    if (!process.connected) return Promise.reject(new Error('The cluster backplane has lost its IPC channel to the primary.'))
    listen()
    const id = ++nextId
    return new Promise<number>((resolve, reject) => {
      const timer = setTimeout(() => {
        waiting.delete(id)
        reject(new Error(`The cluster primary did not answer within ${requestTimeout} ms (does it run clusterPrimary()?).`))
      }, requestTimeout)
      timer.unref()
      waiting.set(id, { resolve, reject, timer })
      send(build(id), (err) => {
        if (err === null) return
        waiting.delete(id)
        clearTimeout(timer)
        reject(err)
      })
    })
  }

  return {
    kind: 'cluster',
    stats,
    setLogger (logger) { log ??= logger },
    publish (channel, payload) {
      if (!process.connected || pending >= maxPending) {
        drop()
        return
      }
      pending++
      stats.published++
      send({ [TAG]: 'pub', channel, payload: toWire(payload, advanced) }, (err) => {
        pending--
        if (err !== null) drop(err)
      })
    },
    async publishCounted (channel, payload) {
      const count = ask((id) => ({ [TAG]: 'pubc', id, channel, payload: toWire(payload, advanced) }))
      stats.published++
      return await count
    },
    async subscribe (channel, onMessage) {
      handlers.set(channel, onMessage)
      await ask((id) => ({ [TAG]: 'sub', id, channel }))
    },
    async unsubscribe (channel) {
      if (!handlers.delete(channel)) return
      if (process.connected) await ask((id) => ({ [TAG]: 'unsub', id, channel }))
    },
    async close () {
      const channels = [...handlers.keys()]
      await Promise.allSettled(channels.map((channel) => this.unsubscribe(channel)))
      for (const entry of waiting.values()) {
        clearTimeout(entry.timer)
        entry.reject(new Error('The cluster backplane is closed.'))
      }
      waiting.clear()
      if (listening) process.off('message', onMessage)
      listening = false
    }
  }
}
