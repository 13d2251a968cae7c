// A third hub protocol for the tests, on both ends: "lines", a text protocol
// with its own record framing (one message per line, ended by "\n") and its
// own encoding (a JSON array per message, not JSON's objects). Server side it
// is a HubProtocolDefinition; client side an IHubProtocol for the official
// client's withHubProtocol. Both ends share one encoder and one decoder.
import { StringDecoder } from 'node:string_decoder'
import * as signalR from '@microsoft/signalr'
import {
  MessageType, ProtocolError, type HubMessage, type HubProtocolDefinition, type RecordFraming, type RecordSplitter
} from '../../lib/index.js'

const NEWLINE = '\n'

/** Cuts a byte stream into lines; refuses a line longer than the limit as soon as it is. */
class LineSplitter implements RecordSplitter<string> {
  private readonly decoder = new StringDecoder('utf8')
  private pending = ''
  private readonly limit: number

  constructor (limit: number | null) {
    this.limit = limit ?? Number.POSITIVE_INFINITY
  }

  split (chunk: Buffer, out: string[]): void {
    const lines = (this.pending + this.decoder.write(chunk)).split(NEWLINE)
    this.pending = lines.pop()!
    for (const line of lines) {
      if (Buffer.byteLength(line) + 1 > this.limit) throw new ProtocolError(`A line passed the limit of ${this.limit} bytes.`)
      out.push(line)
    }
    if (Buffer.byteLength(this.pending) > this.limit) throw new ProtocolError(`A line passed the limit of ${this.limit} bytes.`)
  }
}

export const newlineFraming: RecordFraming<string> = {
  createSplitter: (limit) => new LineSplitter(limit)
}

type Wire = unknown[]

/** Our message as the wire array. Completion: kind 'e' error, 'r' result, 'v' neither. */
function toWire (m: HubMessage): Wire {
  switch (m.type) {
    case MessageType.Invocation:
    case MessageType.StreamInvocation:
      return [m.type, m.invocationId ?? null, m.target, m.arguments, m.streamIds ?? []]
    case MessageType.StreamItem:
      return [m.type, m.invocationId, m.item ?? null]
    case MessageType.Completion:
      if (m.error !== undefined) return [m.type, m.invocationId, 'e', m.error]
      return m.hasResult ? [m.type, m.invocationId, 'r', m.result ?? null] : [m.type, m.invocationId, 'v']
    case MessageType.CancelInvocation:
      return [m.type, m.invocationId]
    case MessageType.Ping:
      return [m.type]
    case MessageType.Close:
      return [m.type, m.error ?? null, m.allowReconnect === true]
    case MessageType.Ack:
    case MessageType.Sequence:
      return [m.type, m.sequenceId]
  }
}

function fromWire (line: string): HubMessage | undefined {
  let w: Wire
  try {
    w = JSON.parse(line) as Wire
  } catch {
    throw new ProtocolError('A line is not a JSON array.')
  }
  if (!Array.isArray(w) || typeof w[0] !== 'number') throw new ProtocolError('A line is not a message.')
  switch (w[0]) {
    case MessageType.Invocation:
      return { type: w[0], invocationId: (w[1] as string | null) ?? undefined, target: w[2] as string, arguments: w[3] as unknown[], streamIds: (w[4] as string[]).length > 0 ? w[4] as string[] : undefined }
    case MessageType.StreamInvocation:
      return { type: w[0], invocationId: w[1] as string, target: w[2] as string, arguments: w[3] as unknown[], streamIds: (w[4] as string[]).length > 0 ? w[4] as string[] : undefined }
    case MessageType.StreamItem:
      return { type: w[0], invocationId: w[1] as string, item: w[2] }
    case MessageType.Completion:
      if (w[2] === 'e') return { type: w[0], invocationId: w[1] as string, error: w[3] as string, hasResult: false }
      return w[2] === 'r' ? { type: w[0], invocationId: w[1] as string, hasResult: true, result: w[3] } : { type: w[0], invocationId: w[1] as string, hasResult: false }
    case MessageType.CancelInvocation:
      return { type: w[0], invocationId: w[1] as string }
    case MessageType.Ping:
      return { type: w[0] }
    case MessageType.Close:
      return { type: w[0], error: (w[1] as string | null) ?? undefined, allowReconnect: w[2] === true ? true : undefined }
    case MessageType.Ack:
    case MessageType.Sequence:
      return { type: w[0], sequenceId: w[1] as number }
    default:
      return undefined
  }
}

/**
 * The server side. A class, so `write` reaches its counter through `this`:
 * the plugin calls the definition's methods as methods. `writes` counts
 * serializations, to show a broadcast is written once for this protocol.
 */
export class LineProtocol implements HubProtocolDefinition<string> {
  readonly name = 'lines'
  readonly version = 1
  readonly transferFormat = 'text' as const
  readonly framing = newlineFraming
  writes = 0
  /** Only messages of these types count (a test may ignore pings and completions). */
  private readonly counted: ReadonlySet<number>

  constructor (counted: readonly number[] = [MessageType.Invocation]) {
    this.counted = new Set(counted)
  }

  parse (line: string): HubMessage | undefined {
    return fromWire(line)
  }

  write (message: HubMessage): Buffer {
    if (this.counted.has(message.type)) this.writes++
    return Buffer.from(JSON.stringify(toWire(message)) + NEWLINE)
  }
}

/** The client side, for `HubConnectionBuilder.withHubProtocol`. */
export class LineClientProtocol implements signalR.IHubProtocol {
  readonly name = 'lines'
  readonly version = 1
  readonly transferFormat = signalR.TransferFormat.Text

  parseMessages (input: string | ArrayBuffer): signalR.HubMessage[] {
    if (typeof input !== 'string') throw new Error('lines is a text protocol')
    const out: signalR.HubMessage[] = []
    for (const line of input.split(NEWLINE)) {
      if (line === '') continue
      const message = fromWire(line)
      if (message === undefined) continue
      if (message.type === MessageType.Completion) {
        // The official client tells a result by the presence of `result`, not by a flag.
        const { hasResult, ...rest } = message
        out.push((hasResult ? rest : { ...rest, result: undefined }) as unknown as signalR.HubMessage)
      } else {
        out.push(message as unknown as signalR.HubMessage)
      }
    }
    return out
  }

  writeMessage (message: signalR.HubMessage): string {
    const m = message as unknown as HubMessage & { result?: unknown }
    const ours = m.type === MessageType.Completion ? { ...m, hasResult: m.error === undefined && 'result' in m } : m
    return JSON.stringify(toWire(ours)) + NEWLINE
  }
}
