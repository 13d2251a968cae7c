import Fastify from 'fastify'
import signalr, {
  defineHub, defineHubProtocol, frameBinary, lengthPrefixFraming, MessageType, ProtocolError, recordSeparatorFraming,
  type HubMessage, type HubProtocolDefinition, type ProtocolOption, type RecordFraming, type RecordSplitter, type SignalRPluginOptions
} from '../lib/index.js'
import type { Equal, Expect } from './helpers.js'

// A text protocol on the built-in record-separator framing: records are strings.
const text = defineHubProtocol({
  name: 'text',
  version: 1,
  transferFormat: 'text',
  framing: recordSeparatorFraming,
  parse (record) {
    type _record = Expect<Equal<typeof record, string>>
    return JSON.parse(record) as HubMessage
  },
  write: (message) => Buffer.from(JSON.stringify(message) + '\u001e'),
  writeText: (message) => JSON.stringify(message) + '\u001e'
})
type _text = Expect<Equal<typeof text, HubProtocolDefinition<string>>>

// A binary one on the length-prefix framing: records are Buffers.
const binary = defineHubProtocol({
  name: 'binary',
  version: 1,
  transferFormat: 'binary',
  framing: lengthPrefixFraming,
  parse (record) {
    type _record = Expect<Equal<typeof record, Buffer>>
    if (record.length === 0) throw new ProtocolError('empty')
    return { type: MessageType.Ping }
  },
  write: () => frameBinary(new Uint8Array([MessageType.Ping]))
})

// A framing of one's own.
class Chars implements RecordSplitter<string> {
  split (chunk: Buffer, out: string[]): void { out.push(...chunk.toString('latin1')) }
}
const chars: RecordFraming<string> = { createSplitter: () => new Chars() }
const custom: HubProtocolDefinition<string> = {
  name: 'chars', version: 1, transferFormat: 'text', framing: chars, parse: () => undefined, write: () => Buffer.alloc(0)
}

// The messages are a discriminated union on `type`.
function describe (message: HubMessage): string {
  switch (message.type) {
    case MessageType.Invocation: return message.target
    case MessageType.Completion: return message.hasResult ? 'result' : (message.error ?? 'void')
    default: return String(message.type)
  }
}
void describe

async function options (): Promise<void> {
  const app = Fastify()
  await app.register(signalr, { protocols: ['json', 'messagepack', text, binary, custom] })
  const list: ProtocolOption[] = ['json', text]
  const plugin: SignalRPluginOptions = { protocols: list }
  void plugin
  app.mapHub('/h', defineHub({ methods: {} }), { protocols: [custom] })

  // @ts-expect-error only the built-in names are strings
  await app.register(signalr, { protocols: ['xml'] })
  // @ts-expect-error transferFormat is 'text' or 'binary'
  await app.register(signalr, { protocols: [{ ...custom, transferFormat: 'Text' }] })
  // @ts-expect-error a protocol object needs write
  defineHubProtocol({ name: 'x', version: 1, transferFormat: 'text', framing: chars, parse: () => undefined })
  // @ts-expect-error parse returns a hub message
  defineHubProtocol({ name: 'x', version: 1, transferFormat: 'text', framing: chars, parse: () => 42, write: () => Buffer.alloc(0) })
}
void options
