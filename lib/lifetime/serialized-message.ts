import type { HubProtocol } from '../protocol/hub-protocol.js'
import { MessageType, type HubMessage } from '../protocol/messages.js'

/** Build a transport frame from a protocol's bytes; a module-level function, never a closure per message. */
export type FrameBuilder = (payload: Buffer, binary: boolean) => Buffer

/**
 * An outgoing message with its encoding cached per protocol, so a broadcast is
 * serialized once per protocol however many connections receive it (the idea
 * of ASP.NET's SerializedHubMessage). The key is the protocol's `slot`: the
 * first two registered protocols (in practice json and messagepack, though
 * nothing here knows their names) have fields of their own, any further ones
 * share a small map created on first use.
 */
export class SerializedMessage {
  /**
   * Null for a message that arrived already encoded (from the backplane) until
   * a protocol without bytes asks for it: then it is parsed back once from an
   * encoding at hand.
   */
  private message: HubMessage | null
  /** Counts for stateful reconnect (everything but pings; backplane messages are invocations). */
  readonly trackable: boolean
  private bytes0: Buffer | null = null
  private bytes1: Buffer | null = null
  private frame0: Buffer | null = null
  private frame1: Buffer | null = null
  private more: Map<number, Buffer> | null = null
  private moreFrames: Map<number, Buffer> | null = null
  /** For a message that arrived encoded: the protocol that can read `source` back into a message. */
  private sourceProtocol: HubProtocol | null = null
  private source: Buffer | null = null

  constructor (message: HubMessage | null) {
    this.message = message
    this.trackable = message === null || message.type <= MessageType.CancelInvocation
  }

  /**
   * A message another server encoded: `protocol` wrote `bytes`, and reads
   * them back for a protocol that gets no bytes of its own (`addEncoding`).
   */
  static fromEncoded (protocol: HubProtocol, bytes: Buffer): SerializedMessage {
    const serialized = new SerializedMessage(null)
    serialized.sourceProtocol = protocol
    serialized.source = bytes
    serialized.store(protocol.slot, bytes)
    return serialized
  }

  /** Another encoding of the same message, as it arrived. */
  addEncoding (protocol: HubProtocol, bytes: Buffer): void {
    this.store(protocol.slot, bytes)
  }

  /**
   * The transport's framing of this message (a WebSocket frame), built once
   * for all receivers of the protocol. `build` must be a module-level function.
   */
  framed (protocol: HubProtocol, build: FrameBuilder): Buffer {
    const slot = protocol.slot
    if (slot === 0) return this.frame0 ??= build(this.encode(protocol), protocol.transferFormat === 'Binary')
    if (slot === 1) return this.frame1 ??= build(this.encode(protocol), protocol.transferFormat === 'Binary')
    let frame = this.moreFrames?.get(slot)
    if (frame === undefined) {
      frame = build(this.encode(protocol), protocol.transferFormat === 'Binary')
      ;(this.moreFrames ??= new Map()).set(slot, frame)
    }
    return frame
  }

  encode (protocol: HubProtocol): Buffer {
    const slot = protocol.slot
    if (slot === 0) return this.bytes0 ??= protocol.encode(this.message ?? this.readBack())
    if (slot === 1) return this.bytes1 ??= protocol.encode(this.message ?? this.readBack())
    let bytes = this.more?.get(slot)
    if (bytes === undefined) {
      bytes = protocol.encode(this.message ?? this.readBack())
      this.store(slot, bytes)
    }
    return bytes
  }

  private store (slot: number, bytes: Buffer): void {
    if (slot === 0) this.bytes0 = bytes
    else if (slot === 1) this.bytes1 = bytes
    else (this.more ??= new Map()).set(slot, bytes)
  }

  /**
   * False when the message arrived encoded and its bytes do not parse back
   * (an outside publisher's mistake): checked on arrival, so a bad payload is
   * refused there instead of failing in the middle of a delivery.
   */
  readable (): boolean {
    if (this.message !== null) return true
    try {
      this.readBack()
      return true
    } catch {
      return false
    }
  }

  /**
   * The message behind encoded bytes, for a protocol the sender did not
   * encode (it did not know it): parsed once with the protocol that wrote them.
   */
  private readBack (): HubMessage {
    const out: HubMessage[] = []
    this.sourceProtocol!.createReader(null).read(this.source!, out)
    if (out.length !== 1) throw new Error(`expected one message in the ${this.sourceProtocol!.name} encoding, found ${out.length}`)
    return this.message = out[0]!
  }
}
