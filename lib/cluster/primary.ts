import cluster, { type Worker } from 'node:cluster'
import { fromWire, isTagged, TAG, type ToWorker } from './protocol.js'

export interface ClusterPrimaryOptions {
  /** Messages allowed in the IPC queue to one worker before further ones to it are dropped (and counted). Default 10000. */
  maxPendingPerWorker?: number
}

export interface ClusterPrimaryStats {
  /** Publications that arrived from workers. */
  received: number
  /** Copies handed to workers. */
  relayed: number
  /** Copies not relayed: the worker's queue was full or its channel closed. */
  dropped: number
}

export interface ClusterPrimary {
  readonly stats: ClusterPrimaryStats
  /** How many workers are subscribed to `channel` right now. */
  subscribers (channel: string): number
  /** Channels `worker` is subscribed to (worker.id), for diagnostics. */
  channelsOf (workerId: number): string[]
  /** Stops relaying (workers' requests then go unanswered). */
  close (): void
}

/** Sent with every answer: a worker sees it arrive as a Buffer only when its IPC channel is advanced. */
const PROBE = Buffer.alloc(0)

interface WorkerState {
  worker: Worker
  channels: Set<string>
  pending: number
}

/**
 * The primary's half of the cluster backplane: call it in the primary before
 * `cluster.fork()`. It switches the workers' IPC to `serialization: 'advanced'`
 * (Buffers travel as they are), keeps each worker's subscriptions, relays every
 * publication only to the workers subscribed to its channel, answers counted
 * publications with how many received them, and forgets a worker's
 * subscriptions when it exits.
 */
/** One relay per primary: a second would deliver every message twice. */
let running = false

export function clusterPrimary (options: ClusterPrimaryOptions = {}): ClusterPrimary {
  if (!cluster.isPrimary) throw new Error('clusterPrimary() runs in the node:cluster primary; workers use clusterBackplane()')
  if (running) throw new Error('clusterPrimary() is already running in this process; call close() on it first')
  running = true
  let closed = false
  const maxPending = options.maxPendingPerWorker ?? 10_000
  cluster.setupPrimary({ serialization: 'advanced' })
  const stats: ClusterPrimaryStats = { received: 0, relayed: 0, dropped: 0 }
  const workers = new Map<number, WorkerState>()
  const interest = new Map<string, Set<WorkerState>>()

  function stateOf (worker: Worker): WorkerState {
    let state = workers.get(worker.id)
    if (state === undefined) workers.set(worker.id, state = { worker, channels: new Set(), pending: 0 })
    return state
  }

  function sendTo (state: WorkerState, message: ToWorker): boolean {
    if (!state.worker.isConnected() || state.pending >= maxPending) return false
    state.pending++
    state.worker.send(message, undefined, (err: Error | null) => {
      state.pending--
      if (err !== null) stats.dropped++
    })
    return true
  }

  function relay (channel: string, payload: unknown): number {
    const subscribed = interest.get(channel)
    if (subscribed === undefined) return 0
    // The payload goes on as it came (Buffer or base64 text); each worker decodes what it gets.
    const message = { [TAG]: 'msg', channel, payload } as ToWorker
    let count = 0
    for (const state of subscribed) {
      if (sendTo(state, message)) {
        stats.relayed++
        count++
      } else {
        stats.dropped++
      }
    }
    return count
  }

  function forget (state: WorkerState, channel: string): void {
    state.channels.delete(channel)
    const subscribed = interest.get(channel)
    if (subscribed === undefined) return
    subscribed.delete(state)
    if (subscribed.size === 0) interest.delete(channel)
  }

  function onMessage (worker: Worker, message: unknown): void {
    if (!isTagged(message) || typeof message.channel !== 'string') return
    const state = stateOf(worker)
    const { channel } = message
    switch (message[TAG]) {
      case 'pub':
        stats.received++
        if (fromWire(message.payload) !== null) relay(channel, message.payload)
        return
      case 'pubc': {
        stats.received++
        const count = fromWire(message.payload) === null ? 0 : relay(channel, message.payload)
        sendTo(state, { [TAG]: 'ack', id: message.id as number, count, probe: PROBE })
        return
      }
      case 'sub': {
        let subscribed = interest.get(channel)
        if (subscribed === undefined) interest.set(channel, subscribed = new Set())
        subscribed.add(state)
        state.channels.add(channel)
        sendTo(state, { [TAG]: 'ack', id: message.id as number, count: 1, probe: PROBE })
        return
      }
      case 'unsub':
        forget(state, channel)
        sendTo(state, { [TAG]: 'ack', id: message.id as number, count: 0, probe: PROBE })
    }
  }

  function onExit (worker: Worker): void {
    const state = workers.get(worker.id)
    if (state === undefined) return
    workers.delete(worker.id)
    for (const channel of [...state.channels]) forget(state, channel)
  }

  cluster.on('message', onMessage)
  cluster.on('exit', onExit)
  return {
    stats,
    subscribers: (channel) => interest.get(channel)?.size ?? 0,
    channelsOf: (workerId) => [...(workers.get(workerId)?.channels ?? [])],
    close () {
      if (closed) return
      closed = true
      running = false
      cluster.off('message', onMessage)
      cluster.off('exit', onExit)
    }
  }
}
