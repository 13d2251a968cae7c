import type { FastifyBaseLogger } from 'fastify'
import { Packr, Unpackr } from 'msgpackr'
import type { Backplane } from '../backplane/backplane.js'
import { randomId } from '../connection/ids.js'
import { HubError } from '../errors.js'
import { jsonProtocol } from '../protocol/json.js'
import { messagePackProtocol } from '../protocol/messagepack.js'
import type { HubLifetimeManager, LifetimeConnection, Target } from './lifetime-manager.js'
import { LocalLifetimeManager } from './local.js'
import { SerializedMessage } from './serialized-message.js'

/**
 * Envelopes on the bus, as MessagePack arrays (documented in the README so
 * other services can publish): the message kind first, then the origin server.
 */
const SEND = 1 // [1, origin, target, jsonBytes, messagePackBytes]
const GROUP = 2 // [2, origin, requestId, connectionId, groupName, add]
const INVOKE = 3 // [3, origin, requestId, connectionId, method, args]
const REPLY = 4 // [4, requestId, ok, resultOrErrorText]

/** Extra wait for a remote client result, so the owner's own timeout error can come back first. */
const REPLY_MARGIN = 250

const packr = new Packr({ useRecords: false, moreTypes: false, variableMapSize: true, encodeUndefinedAsNil: true })
const unpackr = new Unpackr({ useRecords: false, mapsAsObjects: true, moreTypes: false })

interface PendingRequest {
  resolve (value: unknown): void
  reject (error: Error): void
  timer: NodeJS.Timeout
}

export interface ScaledOptions {
  /** Channel prefix shared by the servers of one app. */
  prefix: string
  /** ms a cross-server group change or client result may take. */
  timeout: number
  log: FastifyBaseLogger
}

/**
 * Local delivery plus a backplane (the ClusterAdapter idea): every send is
 * delivered to this server's connections at once and published once, already
 * encoded for every protocol, for the other servers to deliver to theirs. A
 * server ignores its own publications, so nobody gets a message twice. Group
 * changes and client results for connections elsewhere are requests answered
 * by the owning server on the requester's reply channel.
 */
export class ScaledLifetimeManager implements HubLifetimeManager {
  readonly local = new LocalLifetimeManager()
  readonly serverId = randomId()
  private readonly backplane: Backplane
  private readonly busChannel: string
  private readonly replyChannel: string
  private readonly options: ScaledOptions
  private readonly pending = new Map<string, PendingRequest>()
  private requestCounter = 0
  private started = false

  constructor (backplane: Backplane, hubName: string, options: ScaledOptions) {
    this.backplane = backplane
    this.options = options
    this.busChannel = `${options.prefix}${hubName}:bus`
    this.replyChannel = `${options.prefix}${hubName}:reply:${this.serverId}`
  }

  /** The bus channel of a hub, for services that publish without a hub. */
  static channelFor (prefix: string, hubName: string): string {
    return `${prefix}${hubName}:bus`
  }

  async start (): Promise<void> {
    if (this.started) return
    this.started = true
    await this.backplane.subscribe(this.busChannel, (payload) => { this.onBusMessage(payload) })
    await this.backplane.subscribe(this.replyChannel, (payload) => { this.onReply(payload) })
  }

  onConnected (connection: LifetimeConnection): void {
    this.local.onConnected(connection)
  }

  onDisconnected (connection: LifetimeConnection): void {
    this.local.onDisconnected(connection)
  }

  send (target: Target, message: SerializedMessage): Promise<void> {
    if (!(target.kind === 'connections' && target.ids.every((id) => this.local.connections.has(id)))) {
      // Publish before the local writes, so other servers start while this one writes to its own.
      const json = message.encode(jsonProtocol)
      const binary = message.encode(messagePackProtocol)
      this.publish([SEND, this.serverId, target, json, binary])
    }
    return this.local.send(target, message)
  }

  addToGroup (connectionId: string, groupName: string): Promise<void> {
    return this.changeGroup(connectionId, groupName, true)
  }

  removeFromGroup (connectionId: string, groupName: string): Promise<void> {
    return this.changeGroup(connectionId, groupName, false)
  }

  invokeClient (connectionId: string, method: string, args: unknown[]): Promise<unknown> {
    if (this.local.connections.has(connectionId)) return this.local.invokeClient(connectionId, method, args)
    // The owning server applies clientResultTimeout itself and replies with its error; waiting a
    // little longer here lets that reply arrive instead of a vaguer "no answer".
    // The owner checks deadlines on its heartbeat, at most half the timeout (and 1 s) late.
    const margin = Math.min(1000, this.options.timeout / 2) + REPLY_MARGIN
    return this.request(connectionId, this.options.timeout + margin,
      (requestId) => [INVOKE, this.serverId, requestId, connectionId, method, args])
  }

  async close (): Promise<void> {
    const closing = new Error('The server is shutting down.')
    for (const entry of this.pending.values()) {
      clearTimeout(entry.timer)
      entry.reject(closing)
    }
    this.pending.clear()
    if (!this.started) return
    this.started = false
    await Promise.all([this.backplane.unsubscribe(this.busChannel), this.backplane.unsubscribe(this.replyChannel)])
  }

  private async changeGroup (connectionId: string, groupName: string, add: boolean): Promise<void> {
    if (this.local.connections.has(connectionId)) {
      return add ? this.local.addToGroup(connectionId, groupName) : this.local.removeFromGroup(connectionId, groupName)
    }
    await this.request(connectionId, this.options.timeout,
      (requestId) => [GROUP, this.serverId, requestId, connectionId, groupName, add])
  }

  /** Publishes a request to whichever server owns `connectionId` and awaits its reply. */
  private request (connectionId: string, timeout: number, envelope: (requestId: string) => unknown[]): Promise<unknown> {
    const requestId = `${this.serverId}:${++this.requestCounter}`
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        this.pending.delete(requestId)
        reject(new Error(`Connection '${connectionId}' does not exist on any server (no answer within ${timeout} ms).`))
      }, timeout)
      timer.unref()
      this.pending.set(requestId, { resolve, reject, timer })
      this.publish(envelope(requestId))
    })
  }

  private publish (envelope: unknown[]): void {
    this.backplane.publish(this.busChannel, packr.pack(envelope))
  }

  private reply (origin: string, requestId: string, ok: boolean, value: unknown): void {
    this.backplane.publish(this.replyChannelOf(origin), packr.pack([REPLY, requestId, ok, value]))
  }

  private replyChannelOf (serverId: string): string {
    return this.replyChannel.slice(0, this.replyChannel.length - this.serverId.length) + serverId
  }

  private onBusMessage (payload: Buffer): void {
    let envelope: unknown[]
    try {
      envelope = unpackr.unpack(payload) as unknown[]
    } catch (err) {
      this.options.log.warn({ err }, 'ignoring an unreadable backplane message')
      return
    }
    if (!Array.isArray(envelope) || envelope[1] === this.serverId) return
    switch (envelope[0]) {
      case SEND: {
        const [, , target, json, binary] = envelope as [number, string, Target, Buffer, Buffer]
        this.local.deliver(target, SerializedMessage.fromEncoded(json, binary))
        return
      }
      case GROUP: {
        const [, origin, requestId, connectionId, groupName, add] = envelope as [number, string, string, string, string, boolean]
        if (!this.local.connections.has(connectionId)) return
        const change = add ? this.local.addToGroup(connectionId, groupName) : this.local.removeFromGroup(connectionId, groupName)
        void change.then(() => { this.reply(origin, requestId, true, null) })
        return
      }
      case INVOKE: {
        const [, origin, requestId, connectionId, method, args] = envelope as [number, string, string, string, string, unknown[]]
        if (!this.local.connections.has(connectionId)) return
        this.local.invokeClient(connectionId, method, args).then(
          (result) => { this.reply(origin, requestId, true, result) },
          (err: Error) => { this.reply(origin, requestId, false, err.message) }
        )
      }
    }
  }

  private onReply (payload: Buffer): void {
    let envelope: unknown[]
    try {
      envelope = unpackr.unpack(payload) as unknown[]
    } catch {
      return
    }
    if (!Array.isArray(envelope) || envelope[0] !== REPLY) return
    const [, requestId, ok, value] = envelope as [number, string, boolean, unknown]
    const entry = this.pending.get(requestId)
    if (entry === undefined) return
    this.pending.delete(requestId)
    clearTimeout(entry.timer)
    if (ok) entry.resolve(value)
    else entry.reject(new HubError(String(value)))
  }
}
