import type { FastifyBaseLogger } from 'fastify'
import { wallClock, type Clock } from '../clock.js'
import type { Backplane } from '../backplane/backplane.js'
import { codes, fromRemote, toRemote } from '../errors.js'
import type { HubProtocol } from '../protocol/hub-protocol.js'
import { jsonProtocol } from '../protocol/json.js'
import { messagePackProtocol } from '../protocol/messagepack.js'
import { HubChannels, type BackplaneRouting } from './channels.js'
import { GROUP, INVOKE, isFrom, newOrigin, originOf, pack, REPLY, SEND, unpack, type Envelope, type EncodingsByName } from './envelope.js'
import type { HubLifetimeManager, LifetimeConnection, Target } from './lifetime-manager.js'
import { LocalLifetimeManager } from './local.js'
import { SerializedMessage } from './serialized-message.js'
import { ChannelSubscriptions } from './subscriptions.js'

/** Past this many groups, users or remote connections a send goes once to the all channel with its target list. */
export const DEFAULT_FANOUT_LIMIT = 16
const LOG_EVERY_MS = 5000
/** Longest a new connection waits for its channels' subscriptions (the backplane may be down). */
const CONNECT_WAIT_MS = 2000
const NO_NAMES: readonly string[] = []

interface PendingRequest {
  resolve (value: unknown): void
  reject (error: Error): void
  timer: NodeJS.Timeout
}

/** Which channel a payload came in on: it decides who a send is for. */
type Scope =
  | { readonly kind: 'all' }
  | { readonly kind: 'group', readonly name: string }
  | { readonly kind: 'user', readonly id: string }
  | { readonly kind: 'connection', readonly id: string }

const ALL_SCOPE: Scope = { kind: 'all' }

export interface ScaledOptions {
  /** Channel prefix shared by the servers of one app. */
  prefix: string
  /** ms a cross-server group change or client result may take (clientResultTimeout). */
  timeout: number
  log: FastifyBaseLogger
  /** `targeted` (default), or `hub`: the former single-channel design, a benchmarking baseline. */
  routing?: BackplaneRouting
  /** Targets past which a multi-target send falls back to the all channel. */
  fanoutLimit?: number
  /** False for an emitter: it has no connections, so it subscribes to nothing but its ack channel. */
  serving?: boolean
  /** The plugin's clock (the connection store's); the wall clock for an emitter. */
  clock?: Clock
}

/** Rejects with `error()` if `promise` has not settled within `ms`. */
function bounded<T> (promise: Promise<T>, ms: number, error: () => Error): Promise<T> {
  let timer: NodeJS.Timeout | undefined
  const bound = new Promise<never>((_resolve, reject) => {
    timer = setTimeout(() => { reject(error()) }, ms)
    timer.unref()
  })
  return Promise.race([promise, bound]).finally(() => { clearTimeout(timer) })
}

function unique (values: readonly string[]): readonly string[] {
  return values.length < 2 ? values : [...new Set(values)]
}

function asBuffer (bytes: Uint8Array): Buffer {
  return Buffer.isBuffer(bytes) ? bytes : Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength)
}

/**
 * Local delivery plus a backplane (the ClusterAdapter idea): every send is
 * delivered to this server's connections at once and published once, already
 * encoded for every protocol, on the channels of its targets (see
 * channels.ts). A server subscribes to a group, user or connection channel
 * only while it has a local member, and drops its own publications by their
 * origin header, so nobody gets a message twice. Group changes and client
 * results for connections elsewhere are requests on the connection's channel,
 * answered on the requester's ack channel; a request that reaches no
 * subscriber fails at once.
 */
export class ScaledLifetimeManager implements HubLifetimeManager {
  readonly local = new LocalLifetimeManager()
  readonly serverId: string
  readonly channels: HubChannels
  readonly routing: BackplaneRouting
  /** Payloads that arrived but were not a valid envelope (from another service, or noise). */
  malformed = 0
  /** Payloads from other publishers that this server decoded (its own are dropped unread). */
  decoded = 0
  private readonly origin: Buffer
  private readonly backplane: Backplane
  private readonly options: ScaledOptions
  private readonly fanoutLimit: number
  private readonly subscriptions: ChannelSubscriptions
  private readonly ackChannel: string
  private readonly pending = new Map<string, PendingRequest>()
  /** Protocols this hub serves beyond the two portable ones every envelope carries, and their envelope keys. */
  private readonly others: HubProtocol[] = []
  private readonly otherKeys: string[] = []
  private requestCounter = 0
  private started = false
  private lastMalformedLog = 0

  constructor (backplane: Backplane, hubName: string, options: ScaledOptions) {
    this.backplane = backplane
    this.options = options
    this.routing = options.routing ?? 'targeted'
    this.fanoutLimit = options.fanoutLimit ?? DEFAULT_FANOUT_LIMIT
    const origin = newOrigin()
    this.origin = origin.bytes
    this.serverId = origin.id
    this.channels = new HubChannels(options.prefix, hubName)
    this.ackChannel = this.channels.ack(this.serverId)
    this.subscriptions = new ChannelSubscriptions(backplane, (err, channel) => {
      options.log.warn({ err, channel }, 'backplane subscription failed')
    })
  }

  /**
   * Records the protocols a route of this hub enables: a send is then
   * published with their encodings too, and their bytes are taken from
   * incoming envelopes. Called by mapHub.
   */
  useProtocols (protocols: Iterable<HubProtocol>): void {
    for (const protocol of protocols) {
      if (protocol === jsonProtocol || protocol === messagePackProtocol || this.others.includes(protocol)) continue
      this.others.push(protocol)
      this.otherKeys.push(protocol.name.toLowerCase())
    }
  }

  async start (): Promise<void> {
    if (this.started) return
    this.started = true
    const subscribed = [this.backplane.subscribe(this.ackChannel, (payload) => { this.onReply(payload) })]
    if (this.options.serving !== false) {
      subscribed.push(this.backplane.subscribe(this.channels.all, (payload) => { this.onMessage(payload, ALL_SCOPE) }))
    }
    await Promise.all(subscribed)
  }

  onConnected (connection: LifetimeConnection): void | Promise<void> {
    this.local.onConnected(connection)
    if (this.routing === 'hub') return
    const id = connection.connectionId
    const subscribed = [this.acquire(this.channels.connection(id), { kind: 'connection', id })]
    const userId = connection.userId
    if (userId !== undefined) subscribed.push(this.acquire(this.channels.user(userId), { kind: 'user', id: userId }))
    // Waits, so a client result or group change from another server right after the
    // handshake finds the connection; but an outage must not hold new connections for long.
    const bound = Math.min(this.options.timeout, CONNECT_WAIT_MS)
    return bounded(Promise.all(subscribed), bound, () => new Error(`not confirmed within ${bound} ms`)).then(() => {}, (err: unknown) => {
      this.options.log.warn({ err, connectionId: id }, 'backplane subscription for a new connection not confirmed; it is reachable locally only until it is')
    })
  }

  onDisconnected (connection: LifetimeConnection): void {
    if (this.local.connections.get(connection.connectionId) !== connection) return
    const groups = this.routing === 'targeted' ? [...connection.groupNames] : NO_NAMES
    this.local.onDisconnected(connection)
    if (this.routing === 'hub') return
    this.subscriptions.release(this.channels.connection(connection.connectionId))
    if (connection.userId !== undefined) this.subscriptions.release(this.channels.user(connection.userId))
    for (const name of groups) this.subscriptions.release(this.channels.group(name))
  }

  send (target: Target, message: SerializedMessage): Promise<void> {
    if (!(target.kind === 'connections' && target.ids.every((id) => this.local.connections.has(id)))) {
      // Publish before the local writes, so other servers start while this one writes to its own.
      this.publishSend(target, message)
    }
    return this.local.send(target, message)
  }

  addToGroup (connectionId: string, groupName: string): Promise<void> {
    const connection = this.local.connections.get(connectionId)
    if (connection === undefined) return this.changeRemote(connectionId, groupName, true)
    if (this.routing === 'hub') return this.local.addToGroup(connectionId, groupName)
    const channel = this.channels.group(groupName)
    let ready: Promise<void>
    if (connection.groupNames.has(groupName)) {
      ready = this.subscriptions.ready(channel)
    } else {
      void this.local.addToGroup(connectionId, groupName)
      ready = this.acquire(channel, { kind: 'group', name: groupName })
    }
    // Resolves once this server is subscribed, so a send from any server right after reaches the member.
    return bounded(ready, this.options.timeout,
      () => new codes.SIGNALR_ERR_BACKPLANE_TIMEOUT(`The backplane did not confirm the subscription to group '${groupName}'`, this.options.timeout))
  }

  removeFromGroup (connectionId: string, groupName: string): Promise<void> {
    const connection = this.local.connections.get(connectionId)
    if (connection === undefined) return this.changeRemote(connectionId, groupName, false)
    if (this.routing === 'targeted' && connection.groupNames.has(groupName)) {
      this.subscriptions.release(this.channels.group(groupName))
    }
    return this.local.removeFromGroup(connectionId, groupName)
  }

  invokeClient (connectionId: string, method: string, args: unknown[]): Promise<unknown> {
    if (this.local.connections.has(connectionId)) return this.local.invokeClient(connectionId, method, args)
    // The owner applies clientResultTimeout too; the caller's own bound, with the same text,
    // also ends the call when the owner dies while its client is answering.
    const timeout = this.options.timeout
    return this.request(connectionId, timeout,
      () => new codes.SIGNALR_ERR_CLIENT_RESULT_TIMEOUT(timeout, method),
      (requestId) => [INVOKE, requestId, connectionId, method, args])
  }

  async close (): Promise<void> {
    const closing = new codes.SIGNALR_ERR_SHUTTING_DOWN()
    for (const entry of this.pending.values()) {
      clearTimeout(entry.timer)
      entry.reject(closing)
    }
    this.pending.clear()
    if (!this.started) return
    this.started = false
    const channels = [this.ackChannel]
    if (this.options.serving !== false) channels.push(this.channels.all)
    await Promise.all([...channels.map((channel) => this.backplane.unsubscribe(channel)), this.subscriptions.clear()])
  }

  private acquire (channel: string, scope: Scope): Promise<void> {
    return this.subscriptions.acquire(channel, (payload) => { this.onMessage(payload, scope) })
  }

  private changeRemote (connectionId: string, groupName: string, add: boolean): Promise<void> {
    const timeout = this.options.timeout
    return this.request(connectionId, timeout,
      () => new codes.SIGNALR_ERR_BACKPLANE_TIMEOUT(`Connection '${connectionId}' did not answer the group change`, timeout),
      (requestId) => [GROUP, requestId, connectionId, groupName, add]) as Promise<void>
  }

  /**
   * Publishes a request to whichever server owns `connectionId` and awaits its
   * answer. Nobody subscribed to the connection's channel means no server has
   * it: that fails at once, as in ASP.NET.
   */
  private async request (connectionId: string, timeout: number, timedOut: () => Error, envelope: (requestId: string) => Envelope): Promise<unknown> {
    const requestId = `${++this.requestCounter}`
    const answer = new Promise<unknown>((resolve, reject) => {
      const timer = setTimeout(() => {
        this.pending.delete(requestId)
        reject(timedOut())
      }, timeout)
      timer.unref()
      this.pending.set(requestId, { resolve, reject, timer })
    })
    const channel = this.routing === 'targeted' ? this.channels.connection(connectionId) : this.channels.all
    let receivers: number
    try {
      receivers = await this.backplane.publishCounted(channel, pack(this.origin, envelope(requestId)))
    } catch (err) {
      this.forget(requestId)
      throw err
    }
    if (receivers === 0) {
      this.forget(requestId)
      throw new codes.SIGNALR_ERR_CONNECTION_NOT_FOUND(connectionId)
    }
    return await answer
  }

  private forget (requestId: string): void {
    const entry = this.pending.get(requestId)
    if (entry === undefined) return
    this.pending.delete(requestId)
    clearTimeout(entry.timer)
    // Settled so the promise nobody awaits any more is not an unhandled rejection.
    entry.resolve(undefined)
  }

  /** Publishes a send on the channels of its target (or the all channel, past the fan-out limit). */
  private publishSend (target: Target, message: SerializedMessage): void {
    const json = message.encode(jsonProtocol)
    const binary = message.encode(messagePackProtocol)
    const payload = pack(this.origin, this.others.length === 0
      ? [SEND, target, json, binary]
      : [SEND, target, json, binary, this.otherEncodings(message)])
    if (this.routing === 'hub' || target.kind === 'all') {
      this.backplane.publish(this.channels.all, payload)
      return
    }
    let channels: string[]
    switch (target.kind) {
      case 'connections':
        channels = unique(target.ids).filter((id) => !this.local.connections.has(id)).map((id) => this.channels.connection(id))
        break
      case 'users':
        channels = unique(target.ids).map((id) => this.channels.user(id))
        break
      case 'groups':
        channels = unique(target.names).map((name) => this.channels.group(name))
        break
    }
    if (channels.length > this.fanoutLimit) {
      this.backplane.publish(this.channels.all, payload)
      return
    }
    for (const channel of channels) this.backplane.publish(channel, payload)
  }

  private otherEncodings (message: SerializedMessage): EncodingsByName {
    const out: Record<string, Uint8Array> = {}
    for (let i = 0; i < this.others.length; i++) out[this.otherKeys[i]!] = message.encode(this.others[i]!)
    return out
  }

  /**
   * The message of a SEND envelope, with every encoding it carries that this
   * server can use; null when a protocol this server serves is missing and
   * the MessagePack form it would be written from does not parse.
   */
  private received (envelope: Extract<Envelope, readonly [typeof SEND, ...unknown[]]>): SerializedMessage | null {
    // MessagePack first: it is what a protocol missing from the envelope is written from.
    const message = SerializedMessage.fromEncoded(messagePackProtocol, asBuffer(envelope[3]))
    message.addEncoding(jsonProtocol, asBuffer(envelope[2]))
    const encodings = envelope.length === 5 ? envelope[4] : null
    let missing = false
    for (let i = 0; i < this.others.length; i++) {
      const key = this.otherKeys[i]!
      // Servers agree on protocols by name; unknown names are for servers with other protocols.
      if (encodings !== null && Object.hasOwn(encodings, key)) message.addEncoding(this.others[i]!, asBuffer(encodings[key]!))
      else missing = true
    }
    return !missing || message.readable() ? message : null
  }

  private reply (origin: string, requestId: string, value: unknown): void {
    this.backplane.publish(this.channels.ack(origin), pack(this.origin, [REPLY, requestId, true, value]))
  }

  /** A failure goes back with its code, so the asker applies the detailed-errors rule as it would locally. */
  private replyError (origin: string, requestId: string, err: unknown): void {
    const [message, code] = toRemote(err)
    this.backplane.publish(this.channels.ack(origin), pack(this.origin, [REPLY, requestId, false, message, code]))
  }

  private onMessage (payload: Buffer, scope: Scope): void {
    if (isFrom(payload, this.origin)) return
    this.decoded++
    const envelope = unpack(payload)
    if (typeof envelope === 'string') {
      this.refuse(envelope, scope)
      return
    }
    switch (envelope[0]) {
      case SEND: {
        const message = this.received(envelope)
        if (message === null) this.refuse('a send whose MessagePack message does not parse', scope)
        else this.deliver(scope, envelope[1], message)
        return
      }
      case GROUP: {
        const [, requestId, connectionId, groupName, add] = envelope
        if (!this.local.connections.has(connectionId)) return
        const origin = originOf(payload)
        const change = add ? this.addToGroup(connectionId, groupName) : this.removeFromGroup(connectionId, groupName)
        change.then(() => { this.reply(origin, requestId, null) }, (err: unknown) => { this.replyError(origin, requestId, err) })
        return
      }
      case INVOKE: {
        const [, requestId, connectionId, method, args] = envelope
        if (!this.local.connections.has(connectionId)) return
        const origin = originOf(payload)
        this.local.invokeClient(connectionId, method, args).then(
          (result) => { this.reply(origin, requestId, result) },
          (err: unknown) => { this.replyError(origin, requestId, err) }
        )
        return
      }
      default:
        this.refuse('a reply on a hub channel', scope)
    }
  }

  private deliver (scope: Scope, target: Target, message: SerializedMessage): void {
    switch (scope.kind) {
      case 'all':
        this.local.deliver(target, message)
        return
      case 'connection':
        this.local.connections.get(scope.id)?.sendSerialized(message)
        return
      case 'user': {
        const connections = this.local.users.get(scope.id)
        if (connections !== undefined) for (const connection of connections) connection.sendSerialized(message)
        return
      }
      case 'group':
        this.deliverToGroup(scope.name, target, message)
    }
  }

  /**
   * A send to several groups comes in once per group channel. A member of
   * several of them takes its one copy from the first of those groups in the
   * target's list (it is subscribed there too), so each connection gets one.
   */
  private deliverToGroup (name: string, target: Target, message: SerializedMessage): void {
    const members = this.local.groups.get(name)
    if (members === undefined) return
    const names = target.kind === 'groups' ? target.names : NO_NAMES
    const exclude = target.kind === 'groups' ? target.exclude : null
    const index = names.indexOf(name)
    const earlier = index > 0 ? names.slice(0, index) : NO_NAMES
    for (const connection of members) {
      if (exclude !== null && exclude.includes(connection.connectionId)) continue
      if (earlier.length > 0 && earlier.some((g) => connection.groupNames.has(g))) continue
      connection.sendSerialized(message)
    }
  }

  private onReply (payload: Buffer): void {
    this.decoded++
    const envelope = unpack(payload)
    if (typeof envelope === 'string' || envelope[0] !== REPLY) {
      this.refuse(typeof envelope === 'string' ? envelope : 'not a reply on the ack channel', null)
      return
    }
    const [, requestId, ok, value, code] = envelope
    const entry = this.pending.get(requestId)
    if (entry === undefined) return
    this.pending.delete(requestId)
    clearTimeout(entry.timer)
    if (ok) entry.resolve(value)
    else entry.reject(fromRemote(String(value), code))
  }

  /** Counts a payload that is not a valid envelope; logs at most every 5 s, never throws. */
  private refuse (reason: string, scope: Scope | null): void {
    this.malformed++
    const now = (this.options.clock ?? wallClock)()
    if (now - this.lastMalformedLog < LOG_EVERY_MS) return
    this.lastMalformedLog = now
    this.options.log.warn({ reason, channel: scope?.kind ?? 'ack', malformed: this.malformed }, 'ignoring a malformed backplane message')
  }
}
