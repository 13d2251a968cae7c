import { z } from 'zod'
import type { HubConnection } from '../connection/connection.js'
import type { ConnectionStore } from '../connection/connection-store.js'
import { randomId } from '../connection/ids.js'
import { defineHub } from '../hub/define-hub.js'
import type { HubRuntime } from '../hub/hub-runtime.js'
import type { AnyHubDefinition } from '../hub/types.js'

/** The most connections one snapshot lists (counts always cover all of them). */
export const MAX_LISTED_CONNECTIONS = 500
const TICK_MS = 1000

export interface ConnectionSnapshot {
  readonly id: string
  readonly hub: string
  readonly user: string | null
  readonly transport: string
  readonly protocol: string | null
  /** ms since the epoch. */
  readonly connectedAt: number
  readonly groups: readonly string[]
}

export interface HubSnapshot {
  readonly name: string
  readonly connections: number
  readonly transports: Record<string, number>
  readonly protocols: Record<string, number>
  /** [group, members], largest first. */
  readonly groups: ReadonlyArray<[string, number]>
  /** [user id, connections], most connections first. */
  readonly users: ReadonlyArray<[string, number]>
  /** Per second, over the last interval. */
  readonly rates: { invocations: number, received: number, sent: number }
  /** Since the server started. */
  readonly totals: { invocations: number, errors: number, slowClientCloses: number }
}

export interface MonitorSnapshot {
  readonly at: number
  /** A backplane is in use: this snapshot shows this server's connections only. */
  readonly scaled: boolean
  readonly hubs: readonly HubSnapshot[]
  readonly connections: readonly ConnectionSnapshot[]
  readonly totalConnections: number
}

interface Previous { at: number, invocations: number, received: number, sent: number }

function bump (counts: Record<string, number>, key: string): void {
  counts[key] = (counts[key] ?? 0) + 1
}

function sortedCounts (counts: Map<string, number>): Array<[string, number]> {
  return [...counts].sort((a, b) => b[1] - a[1] || (a[0] < b[0] ? -1 : 1))
}

/**
 * The live monitor: snapshots of this server's connections, groups, users and
 * traffic, pushed once a second over a hub of its own while a monitor page is
 * connected (the explorer uses SignalR to watch SignalR).
 */
export class Monitor {
  /** Mapped by the explorer under its path; hidden from the explorer's hub list and AsyncAPI. */
  readonly hub: AnyHubDefinition
  private readonly store: ConnectionStore<HubConnection>
  private readonly runtimes: () => Iterable<HubRuntime>
  private readonly scaled: boolean
  private readonly previous = new Map<HubRuntime, Previous>()
  private watchers = 0
  private timer: NodeJS.Timeout | null = null
  /** Set once the monitor hub is mapped: how snapshots reach the pages. */
  broadcast: ((snapshot: MonitorSnapshot) => Promise<void>) | null = null

  constructor (store: ConnectionStore<HubConnection>, runtimes: () => Iterable<HubRuntime>, scaled: boolean) {
    this.store = store
    this.runtimes = runtimes
    this.scaled = scaled
    const monitor = this
    this.hub = defineHub({
      // Unique per server: with a backplane, each server's pages must get that server's snapshots only.
      name: `fastify-signalr-explorer-monitor-${randomId()}`,
      client: { Snapshot: [z.custom<MonitorSnapshot>()] },
      methods: {
        GetSnapshot: { args: [], handler: () => monitor.snapshot() },
        CloseConnection: {
          args: [z.string().min(1)],
          handler: (_hub, connectionId) => monitor.closeConnection(connectionId)
        }
      },
      onConnected () { monitor.watch(1) },
      onDisconnected () { monitor.watch(-1) }
    }) as unknown as AnyHubDefinition
  }

  /** Closes a hub connection of this server (a plain Close: the client does not reconnect). */
  closeConnection (connectionId: string): boolean {
    for (const connection of this.store.connections()) {
      if (connection.connectionId === connectionId && connection.runtime.definition !== this.hub) {
        connection.abort()
        return true
      }
    }
    return false
  }

  snapshot (now = this.store.clock()): MonitorSnapshot {
    const perHub = new Map<HubRuntime, {
      connections: number,
      transports: Record<string, number>,
      protocols: Record<string, number>,
      groups: Map<string, number>,
      users: Map<string, number>
    }>()
    for (const runtime of this.runtimes()) {
      if (runtime.definition === this.hub) continue
      perHub.set(runtime, { connections: 0, transports: {}, protocols: {}, groups: new Map(), users: new Map() })
    }
    const listed: ConnectionSnapshot[] = []
    let total = 0
    for (const connection of this.store.connections()) {
      const counts = perHub.get(connection.runtime)
      if (counts === undefined) continue // the monitor's own connections
      total++
      counts.connections++
      bump(counts.transports, connection.transport.kind)
      bump(counts.protocols, connection.protocol?.name ?? 'handshake')
      for (const group of connection.groupNames) counts.groups.set(group, (counts.groups.get(group) ?? 0) + 1)
      if (connection.userId !== undefined) counts.users.set(connection.userId, (counts.users.get(connection.userId) ?? 0) + 1)
      if (listed.length < MAX_LISTED_CONNECTIONS) {
        listed.push({
          id: connection.connectionId,
          hub: connection.runtime.name,
          user: connection.userId ?? null,
          transport: connection.transport.kind,
          protocol: connection.protocol?.name ?? null,
          connectedAt: connection.createdAt,
          groups: [...connection.groupNames]
        })
      }
    }
    const hubs: HubSnapshot[] = []
    for (const [runtime, counts] of perHub) {
      const stats = runtime.stats
      const before = this.previous.get(runtime)
      const seconds = before === undefined ? 0 : (now - before.at) / 1000
      const rate = (current: number, previous: number | undefined): number =>
        seconds > 0 && previous !== undefined ? Math.round(((current - previous) / seconds) * 10) / 10 : 0
      hubs.push({
        name: runtime.name,
        connections: counts.connections,
        transports: counts.transports,
        protocols: counts.protocols,
        groups: sortedCounts(counts.groups),
        users: sortedCounts(counts.users),
        rates: {
          invocations: rate(stats.invocations, before?.invocations),
          received: rate(stats.received, before?.received),
          sent: rate(stats.sent, before?.sent)
        },
        totals: { invocations: stats.invocations, errors: stats.errors, slowClientCloses: stats.slowClientCloses }
      })
      // Rates are over the last pushed interval; a GetSnapshot in between must not shorten it.
      if (before === undefined || now - before.at >= TICK_MS / 2) {
        this.previous.set(runtime, { at: now, invocations: stats.invocations, received: stats.received, sent: stats.sent })
      }
    }
    return { at: now, scaled: this.scaled, hubs, connections: listed, totalConnections: total }
  }

  private watch (delta: number): void {
    this.watchers += delta
    if (this.watchers > 0 && this.timer === null) {
      this.timer = setInterval(monitorTick, TICK_MS, this)
      this.timer.unref()
    } else if (this.watchers <= 0) {
      this.stop()
    }
  }

  stop (): void {
    if (this.timer !== null) clearInterval(this.timer)
    this.timer = null
  }

  tick (): void {
    this.broadcast?.(this.snapshot()).catch(() => {})
  }
}

function monitorTick (monitor: Monitor): void {
  monitor.tick()
}
