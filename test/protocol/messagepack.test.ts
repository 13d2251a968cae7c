import t from 'tap'
import { z } from 'zod'
import { Unpackr } from 'msgpackr'
import { MessagePackHubProtocol } from '@microsoft/signalr-protocol-msgpack'
import { defineHub } from '../../lib/index.js'
import { messagePackProtocol } from '../../lib/protocol/messagepack.js'
import { jsonProtocol } from '../../lib/protocol/json.js'
import { BinaryMessageSplitter, frameBinary, writeLengthPrefix } from '../../lib/protocol/binary-framing.js'
import { MessageType, type HubMessage } from '../../lib/protocol/messages.js'
import { ProtocolError } from '../../lib/protocol/protocol-error.js'
import type { HubProtocol } from '../../lib/protocol/hub-protocol.js'
import { startApp } from '../helpers/app.js'
import { signalR } from '../helpers/clients.js'
import { connectCell, MATRIX, type Cell } from '../helpers/matrix.js'

/** The official client's codec: what it writes is exactly what a server receives. */
const client = new MessagePackHubProtocol()
/** A plain MessagePack reader, to look at the array layout the server wrote. */
const raw = new Unpackr({ useRecords: false, mapsAsObjects: true })

function hex (bytes: Uint8Array | ArrayBuffer): string {
  return Buffer.from(bytes instanceof ArrayBuffer ? new Uint8Array(bytes) : bytes).toString('hex')
}

function bytes (...values: number[]): Buffer {
  return Buffer.from(values)
}

function toArrayBuffer (buffer: Buffer): ArrayBuffer {
  return buffer.buffer.slice(buffer.byteOffset, buffer.byteOffset + buffer.length) as ArrayBuffer
}

/** Server encoding. */
function encode (message: HubMessage): Buffer {
  return messagePackProtocol.encode(message)
}

/** What the official client makes of the server's bytes. */
function clientReads (data: Buffer): signalR.HubMessage[] {
  return client.parseMessages(toArrayBuffer(data), signalR.NullLogger.instance)
}

/** The array the server wrote, prefix checked and stripped. */
function layout (data: Buffer): unknown[] {
  const out: Buffer[] = []
  new BinaryMessageSplitter(null).split(data, out)
  if (out.length !== 1) throw new Error(`expected one framed message, got ${out.length}`)
  const value = raw.unpack(out[0]!) as unknown
  if (!Array.isArray(value)) throw new Error('not an array')
  return value
}

/** The server reading bytes (one chunk). */
function parse (data: Buffer, max: number | null = null): HubMessage[] {
  const out: HubMessage[] = []
  messagePackProtocol.createReader(max).read(data, out)
  return out
}

function fromClient (message: signalR.HubMessage): Buffer {
  return Buffer.from(client.writeMessage(message))
}

function protocolError (message: string | RegExp): { constructor: typeof ProtocolError, message: string | RegExp } {
  return { constructor: ProtocolError, message }
}

/** One MessagePack body with its varint prefix, from raw payload bytes. */
function framed (...payload: number[]): Buffer {
  return frameBinary(Buffer.from(payload))
}

t.test('server to client: every message type, byte for byte', async (t) => {
  t.test('Ping is exactly 02 91 06', async (t) => {
    t.equal(hex(encode({ type: MessageType.Ping })), '029106')
    t.equal(hex(encode({ type: MessageType.Ping })), hex(client.writeMessage({ type: signalR.MessageType.Ping })), 'as the client writes it')
    t.same(clientReads(encode({ type: MessageType.Ping })), [{ type: signalR.MessageType.Ping }])
  })

  t.test('Close always has three elements: [7, error|nil, allowReconnect]', async (t) => {
    t.equal(hex(encode({ type: MessageType.Close })), '04' + '93' + '07' + 'c0' + 'c2', 'plain close = [7, nil, false]')
    t.same(layout(encode({ type: MessageType.Close, error: 'bad', allowReconnect: true })), [7, 'bad', true])
    t.same(clientReads(encode({ type: MessageType.Close, error: 'bad', allowReconnect: true })),
      [{ type: signalR.MessageType.Close, error: 'bad', allowReconnect: true }])
    t.same(clientReads(encode({ type: MessageType.Close })), [{ type: signalR.MessageType.Close, error: null, allowReconnect: false }])
  })

  t.test('Invocation: six elements, nil id for fire-and-forget, empty stream id list', async (t) => {
    const fire = encode({ type: MessageType.Invocation, target: 'Fire', arguments: [1] })
    // [1, {}, nil, "Fire", [1], []]
    t.equal(hex(fire), '0c' + '96' + '01' + '80' + 'c0' + 'a446697265' + '9101' + '90')
    t.same(layout(fire), [1, {}, null, 'Fire', [1], []])
    t.same(clientReads(fire), [{ type: 1, headers: {}, target: 'Fire', arguments: [1], streamIds: [] }])
    const withId = encode({ type: MessageType.Invocation, invocationId: 's1', target: 'Ask', arguments: ['x', null] })
    t.same(layout(withId), [1, {}, 's1', 'Ask', ['x', null], []])
    t.equal(hex(withId), hex(client.writeMessage({
      type: signalR.MessageType.Invocation, invocationId: 's1', target: 'Ask', arguments: ['x', null], streamIds: []
    })), 'identical to the official encoder for the same layout')
  })

  t.test('StreamItem: [2, headers, id, item]', async (t) => {
    const item = encode({ type: MessageType.StreamItem, invocationId: '7', item: { a: [1, 2.5, 'z'] } })
    t.same(layout(item), [2, {}, '7', { a: [1, 2.5, 'z'] }])
    t.equal(hex(item), hex(client.writeMessage({ type: signalR.MessageType.StreamItem, invocationId: '7', item: { a: [1, 2.5, 'z'] } })))
    t.same(clientReads(encode({ type: MessageType.StreamItem, invocationId: '7', item: null })),
      [{ type: 2, headers: {}, invocationId: '7', item: null }], 'a null item is nil')
  })

  t.test('Completion result kinds: 1 error, 2 void, 3 value (nil included)', async (t) => {
    const error = encode({ type: MessageType.Completion, invocationId: '1', error: 'boom', hasResult: false })
    t.same(layout(error), [3, {}, '1', 1, 'boom'])
    const none = encode({ type: MessageType.Completion, invocationId: '1', hasResult: false })
    t.equal(hex(none), '06' + '94' + '03' + '80' + 'a131' + '02', 'void: four elements, nothing after the kind')
    const value = encode({ type: MessageType.Completion, invocationId: '1', hasResult: true, result: 42 })
    t.same(layout(value), [3, {}, '1', 3, 42])
    const nil = encode({ type: MessageType.Completion, invocationId: '1', hasResult: true, result: null })
    t.equal(hex(nil), '07' + '95' + '03' + '80' + 'a131' + '03' + 'c0', 'a null result is kind 3 + nil')

    for (const [name, server, official] of [
      ['error', error, { type: 3, invocationId: '1', error: 'boom' }],
      ['void', none, { type: 3, invocationId: '1' }],
      ['value', value, { type: 3, invocationId: '1', result: 42 }],
      ['null', nil, { type: 3, invocationId: '1', result: null }]
    ] as const) {
      t.equal(hex(server), hex(client.writeMessage(official as signalR.CompletionMessage)), `${name}: same bytes as the official encoder`)
      const [read] = clientReads(server) as [signalR.CompletionMessage]
      t.equal(read.error, 'error' in official ? official.error : undefined, `${name}: the client reads the error`)
      t.equal(read.result, 'result' in official ? official.result : undefined, `${name}: the client reads the result`)
    }
  })

  t.test('Ack and Sequence: [8, n] and [9, n]', async (t) => {
    t.equal(hex(encode({ type: MessageType.Ack, sequenceId: 5 })), '03920805')
    t.equal(hex(encode({ type: MessageType.Sequence, sequenceId: 70000 })), hex(client.writeMessage({ type: signalR.MessageType.Sequence, sequenceId: 70000 })))
    t.same(clientReads(encode({ type: MessageType.Sequence, sequenceId: 70000 })), [{ type: 9, sequenceId: 70000 }])
  })

  t.test('headers are a map on types 1 to 3, written when present', async (t) => {
    const message = encode({ type: MessageType.Invocation, target: 'T', arguments: [], headers: { trace: 'abc', k: 'v' } })
    t.same(layout(message)[1], { trace: 'abc', k: 'v' })
    t.same((clientReads(message)[0] as signalR.InvocationMessage).headers, { trace: 'abc', k: 'v' })
    const completion = encode({ type: MessageType.Completion, invocationId: '1', hasResult: false, headers: { a: 'b' } })
    t.same(layout(completion), [3, { a: 'b' }, '1', 2])
  })

  t.test('Date is timestamp extension -1 and Uint8Array is bin, as the client writes them', async (t) => {
    const when = new Date(Date.UTC(2024, 1, 29, 12, 30, 45, 678))
    const exact = new Date(Date.UTC(2024, 0, 1))
    const far = new Date(Date.UTC(2600, 0, 1, 0, 0, 0, 1))
    const data = new Uint8Array([0, 1, 2, 253, 254, 255])
    const args = [when, exact, far, data, new Uint8Array(0)]
    const server = encode({ type: MessageType.Invocation, invocationId: '1', target: 'V', arguments: args })
    t.equal(hex(server), hex(client.writeMessage({ type: 1, invocationId: '1', target: 'V', arguments: args, streamIds: [] } as signalR.InvocationMessage)),
      'identical bytes (32, 64 and 96-bit timestamps, bin 8)')
    const body = server.subarray(1)
    t.ok(body.includes(bytes(0xd6, 0xff)), 'a whole-second date is timestamp 32 (fixext 4, type -1)')
    t.ok(body.includes(bytes(0xd7, 0xff)), 'a date with milliseconds is timestamp 64 (fixext 8, type -1)')
    t.ok(body.includes(bytes(0xc7, 0x0c, 0xff)), 'a date past 2514 is timestamp 96 (ext 8, length 12, type -1)')
    t.ok(body.includes(bytes(0xc4, 0x06, 0, 1, 2, 253, 254, 255)), 'bin 8 with the bytes')
    const [read] = clientReads(server) as [signalR.InvocationMessage]
    const [a, b, c, d, e] = read.arguments as [Date, Date, Date, Uint8Array, Uint8Array]
    t.equal(a.getTime(), when.getTime())
    t.equal(b.getTime(), exact.getTime())
    t.equal(c.getTime(), far.getTime())
    t.same(Array.from(d), Array.from(data))
    t.equal(e.length, 0)

    // And the other way: the server reads what the client wrote.
    const [parsed] = parse(fromClient({ type: 1, invocationId: '1', target: 'V', arguments: args } as signalR.InvocationMessage)) as unknown as [{ arguments: unknown[] }]
    const [pa, pb, pc, pd] = parsed.arguments as [Date, Date, Date, Uint8Array]
    t.ok(pa instanceof Date && pb instanceof Date && pc instanceof Date, 'dates arrive as Date')
    t.same([pa.getTime(), pb.getTime(), pc.getTime()], [when.getTime(), exact.getTime(), far.getTime()])
    t.ok(pd instanceof Uint8Array, 'bin arrives as bytes')
    t.same(Array.from(pd), Array.from(data))
  })
})

t.test('client to server: what the official client writes', async (t) => {
  t.test('fire-and-forget Invocation: 5 elements, nil id (the bytes from the fact sheet)', async (t) => {
    const sent = fromClient({ type: 1, target: 'Fire', arguments: [1] } as signalR.InvocationMessage)
    t.equal(hex(sent), '0b95' + '01' + '80' + 'c0' + 'a446697265' + '9101')
    t.same(parse(sent), [{ type: 1, headers: undefined, invocationId: undefined, target: 'Fire', arguments: [1], streamIds: undefined }])
  })

  t.test('Invocation with an id and upload stream ids (6 elements)', async (t) => {
    const sent = fromClient({ type: 1, invocationId: '1', target: 'Up', arguments: ['a'], streamIds: ['0'], headers: { h: 'v' } } as signalR.InvocationMessage)
    t.same(parse(sent), [{ type: 1, headers: { h: 'v' }, invocationId: '1', target: 'Up', arguments: ['a'], streamIds: ['0'] }])
  })

  t.test('an empty string id counts as fire-and-forget, as in ASP.NET', async (t) => {
    t.same(parse(framed(0x95, 0x01, 0x80, 0xa0, 0xa1, 0x54, 0x90)),
      [{ type: 1, headers: undefined, invocationId: undefined, target: 'T', arguments: [], streamIds: undefined }])
  })

  t.test('StreamInvocation, StreamItem, CancelInvocation', async (t) => {
    t.same(parse(fromClient({ type: 4, invocationId: '2', target: 'Counter', arguments: [3, 0] } as signalR.StreamInvocationMessage)),
      [{ type: 4, headers: undefined, invocationId: '2', target: 'Counter', arguments: [3, 0], streamIds: undefined }])
    t.same(parse(fromClient({ type: 2, invocationId: '0', item: 'x' } as signalR.StreamItemMessage)),
      [{ type: 2, headers: undefined, invocationId: '0', item: 'x' }])
    t.same(parse(fromClient({ type: 5, invocationId: '2' } as signalR.CancelInvocationMessage)),
      [{ type: 5, headers: undefined, invocationId: '2' }])
  })

  t.test('Completion kinds 1, 2, 3 from the client', async (t) => {
    t.same(parse(fromClient({ type: 3, invocationId: 's1', error: 'Error: boom' } as signalR.CompletionMessage)),
      [{ type: 3, headers: undefined, invocationId: 's1', error: 'Error: boom', hasResult: false }])
    t.same(parse(fromClient({ type: 3, invocationId: '0' } as signalR.CompletionMessage)),
      [{ type: 3, headers: undefined, invocationId: '0', hasResult: false }], 'kind 2: an upload stream ends')
    t.same(parse(fromClient({ type: 3, invocationId: 's1', result: null } as signalR.CompletionMessage)),
      [{ type: 3, headers: undefined, invocationId: 's1', hasResult: true, result: null }], 'kind 3 with nil')
    t.same(parse(fromClient({ type: 3, invocationId: 's1', result: { n: 1 } } as signalR.CompletionMessage)),
      [{ type: 3, headers: undefined, invocationId: 's1', hasResult: true, result: { n: 1 } }])
  })

  t.test('Ping, Close [7, nil], Ack, Sequence', async (t) => {
    t.same(parse(fromClient({ type: 6 })), [{ type: 6 }])
    const close = fromClient({ type: 7 } as signalR.CloseMessage)
    t.equal(hex(close), '039207c0')
    t.same(parse(close), [{ type: 7, error: undefined, allowReconnect: undefined }])
    t.same(parse(fromClient({ type: 8, sequenceId: 3 } as signalR.AckMessage)), [{ type: 8, sequenceId: 3 }])
    t.same(parse(fromClient({ type: 9, sequenceId: 1 } as signalR.SequenceMessage)), [{ type: 9, sequenceId: 1 }])
  })

  t.test('several messages in one chunk', async (t) => {
    const chunk = Buffer.concat([
      fromClient({ type: 6 }),
      fromClient({ type: 1, invocationId: '0', target: 'A', arguments: [] } as signalR.InvocationMessage),
      fromClient({ type: 5, invocationId: '0' } as signalR.CancelInvocationMessage)
    ])
    t.same(parse(chunk).map((m) => m.type), [6, 1, 5])
  })
})

t.test('varint length prefix', async (t) => {
  t.test('boundaries', async (t) => {
    t.equal(hex(writeLengthPrefix(0)), '00')
    t.equal(hex(writeLengthPrefix(127)), '7f')
    t.equal(hex(writeLengthPrefix(128)), '8001')
    t.equal(hex(writeLengthPrefix(16383)), 'ff7f')
    t.equal(hex(writeLengthPrefix(16384)), '808001')
    t.equal(hex(writeLengthPrefix(0x7fffffff)), 'ffffffff07', 'the largest length the client accepts')
  })

  // A 20 000-byte string: the prefix takes three bytes.
  const long = fromClient({ type: 1, invocationId: '1', target: 'Echo', arguments: ['y'.repeat(20_000)] } as signalR.InvocationMessage)
  const prefixLength = 3
  t.equal(long[0]! & 0x80, 0x80, 'the test message has a multi-byte prefix')
  t.equal(long[2]! & 0x80, 0, 'of exactly three bytes')

  for (const [name, cuts] of [
    ['split inside the prefix', [1]],
    ['split right after the prefix', [prefixLength]],
    ['split inside the body', [prefixLength + 10_000]],
    ['split inside the prefix and twice inside the body', [2, 500, 15_000]]
  ] as const) {
    t.test(name, async (t) => {
      const reader = messagePackProtocol.createReader(null)
      const out: HubMessage[] = []
      let from = 0
      for (const cut of cuts) {
        reader.read(long.subarray(from, cut), out)
        t.equal(out.length, 0, `nothing before byte ${cut}`)
        from = cut
      }
      reader.read(long.subarray(from), out)
      t.equal(out.length, 1, 'the message once the last byte arrived')
      t.equal(((out[0] as { arguments: string[] }).arguments[0])!.length, 20_000)
    })
  }

  t.test('byte by byte, several messages with a short one between longer ones', async (t) => {
    // 300 bytes: a two-byte prefix. (Kept short: the reader copies its pending bytes on every chunk.)
    const medium = fromClient({ type: 1, invocationId: '1', target: 'Echo', arguments: ['m'.repeat(300)] } as signalR.InvocationMessage)
    t.equal(medium[1]! & 0x80, 0, 'a two-byte prefix')
    const stream = Buffer.concat([medium, fromClient({ type: 6 }), medium])
    const reader = messagePackProtocol.createReader(null)
    const out: HubMessage[] = []
    const seenAt: number[] = []
    for (let i = 0; i < stream.length; i++) {
      const before = out.length
      reader.read(stream.subarray(i, i + 1), out)
      if (out.length > before) seenAt.push(i)
    }
    t.same(out.map((m) => m.type), [1, 6, 1])
    t.same(seenAt, [medium.length - 1, medium.length + 2, stream.length - 1], 'each message as soon as its last byte came')
  })

  t.test('oversize is detected from the prefix, before the body arrives', async (t) => {
    const reader = messagePackProtocol.createReader(1000)
    // The prefix of a 5000-byte message, and not one byte of its body.
    t.throws(() => { reader.read(writeLengthPrefix(5000), []) },
      protocolError('The maximum message size of 1000B was exceeded. The message size can be configured with the maximumReceiveMessageSize option.'))
    const split = messagePackProtocol.createReader(1000)
    const prefix = writeLengthPrefix(5000)
    split.read(prefix.subarray(0, 1), [])
    t.throws(() => { split.read(prefix.subarray(1), []) }, protocolError(/maximum message size of 1000B/), 'also when the prefix itself is split')
    const fits = messagePackProtocol.createReader(1000)
    const out: HubMessage[] = []
    fits.read(frameBinary(Buffer.from([0x91, 0x06])), out)
    t.same(out, [{ type: 6 }], 'a message within the limit is read')
  })

  t.test('lengths of 2 GiB and more are refused', async (t) => {
    t.throws(() => { parse(bytes(0xff, 0xff, 0xff, 0xff, 0x08)) }, protocolError('Messages bigger than 2GB are not supported.'))
    t.throws(() => { parse(bytes(0x80, 0x80, 0x80, 0x80, 0x80, 0x01)) }, protocolError('Messages bigger than 2GB are not supported.'))
    // 2^31 - 1 is allowed by the format: it just waits for the body.
    t.same(parse(bytes(0xff, 0xff, 0xff, 0xff, 0x07)), [], 'the largest legal prefix waits for its body')
  })
})

t.test('malformed input is a ProtocolError', async (t) => {
  const cases: Array<[string, Buffer, string | RegExp]> = [
    ['the reserved byte 0xc1 is refused', framed(0xc1), 'Error reading MessagePack data: type 0xc1 is not allowed.'],
    ['truncated MessagePack inside a complete frame', framed(0x93, 0x01, 0x80), 'Error reading MessagePack data: a container is longer than the data.'],
    ['a map instead of an array', framed(0x81, 0xa1, 0x61, 0x01), 'Message is not a MessagePack array.'],
    ['an empty array', framed(0x90), 'Message is not a MessagePack array.'],
    ['a string as the type', framed(0x91, 0xa1, 0x31), 'Message type is not a number.'],
    ['Invocation with 4 elements', framed(0x94, 0x01, 0x80, 0xc0, 0xa1, 0x54), 'Invalid payload for Invocation message.'],
    ['Invocation with a numeric target', framed(0x95, 0x01, 0x80, 0xc0, 0x07, 0x90), 'Invalid payload for Invocation message.'],
    ['Invocation with a map for arguments', framed(0x95, 0x01, 0x80, 0xc0, 0xa1, 0x54, 0x80), 'Invalid payload for Invocation message.'],
    ['Invocation with a numeric id', framed(0x95, 0x01, 0x80, 0x01, 0xa1, 0x54, 0x90), 'Invalid payload for Invocation message.'],
    ['Invocation with an array for headers', framed(0x95, 0x01, 0x90, 0xc0, 0xa1, 0x54, 0x90), 'Invalid payload for Invocation message.'],
    ['Invocation with numbers as stream ids', framed(0x96, 0x01, 0x80, 0xc0, 0xa1, 0x54, 0x90, 0x91, 0x01), 'Invalid payload for Invocation message.'],
    ['StreamInvocation without id', framed(0x95, 0x04, 0x80, 0xc0, 0xa1, 0x54, 0x90), 'Invalid payload for StreamInvocation message.'],
    ['StreamItem with 3 elements', framed(0x93, 0x02, 0x80, 0xa1, 0x31), 'Invalid payload for StreamItem message.'],
    ['StreamItem with a numeric id', framed(0x94, 0x02, 0x80, 0x01, 0x01), 'Invalid payload for StreamItem message.'],
    ['Completion with 3 elements', framed(0x93, 0x03, 0x80, 0xa1, 0x31), 'Invalid payload for Completion message.'],
    ['Completion kind 1 without the error', framed(0x94, 0x03, 0x80, 0xa1, 0x31, 0x01), 'Invalid payload for Completion message.'],
    ['Completion kind 1 with a numeric error', framed(0x95, 0x03, 0x80, 0xa1, 0x31, 0x01, 0x05), 'Invalid payload for Completion message.'],
    ['Completion kind 3 without the value', framed(0x94, 0x03, 0x80, 0xa1, 0x31, 0x03), 'Invalid payload for Completion message.'],
    ['Completion with an unknown kind', framed(0x95, 0x03, 0x80, 0xa1, 0x31, 0x09, 0xc0), 'Invalid invocation result kind.'],
    ['CancelInvocation with 2 elements', framed(0x92, 0x05, 0x80), 'Invalid payload for CancelInvocation message.'],
    ['Close with a numeric error', framed(0x92, 0x07, 0x01), 'Invalid payload for Close message.'],
    ['Close with a string for allowReconnect', framed(0x93, 0x07, 0xc0, 0xa1, 0x31), 'Invalid payload for Close message.'],
    ['Ack with a string sequence id', framed(0x92, 0x08, 0xa1, 0x31), 'Invalid payload for Ack message.'],
    ['Sequence without its id', framed(0x91, 0x09), 'Invalid payload for Sequence message.']
  ]
  for (const [name, input, message] of cases) {
    t.throws(() => { parse(input) }, protocolError(message), name)
  }
})

t.test('unknown message types are ignored, the rest of the chunk is read', async (t) => {
  const chunk = Buffer.concat([framed(0x93, 0x63, 0x80, 0xa1, 0x78), framed(0x91, 0x0a), fromClient({ type: 6 })])
  t.same(parse(chunk), [{ type: 6 }])
})

t.test('JSON and MessagePack clients on one hub: a broadcast is encoded once per protocol', async (t) => {
  const hub = defineHub({
    methods: {
      Shout: { args: [z.string()], async handler (h, s) { await h.clients.all.send('News', s, new Uint8Array([7])) } }
    }
  })
  const { app, baseUrl } = await startApp(t, (app) => { app.mapHub('/hub', hub) })
  const url = `${baseUrl}/hub`
  const json = MATRIX.filter((c) => c.protocol === 'json')
  const msgpack = MATRIX.filter((c) => c.protocol === 'messagepack')
  // Three of each, on every transport the protocol can use.
  const cells: Cell[] = [...json, msgpack[0]!, msgpack[1]!, msgpack[0]!]
  t.equal(cells.filter((c) => c.protocol === 'json').length, 3)
  t.equal(cells.filter((c) => c.protocol === 'messagepack').length, 3)
  const clients: Array<{ cell: Cell, conn: signalR.HubConnection }> = []
  for (const cell of cells) clients.push({ cell, conn: await connectCell(t, url, cell) })

  const calls = { json: 0, messagepack: 0 }
  const count = (protocol: HubProtocol, name: 'json' | 'messagepack', method: 'encode' | 'encodeText'): void => {
    const original = protocol[method] as ((message: HubMessage) => unknown) | undefined
    if (original === undefined) return
    ;(protocol as unknown as Record<string, unknown>)[method] = function (this: HubProtocol, message: HubMessage) {
      if (message.type === MessageType.Invocation && message.target === 'News') calls[name]++
      return original.call(this, message)
    }
    t.teardown(() => { (protocol as unknown as Record<string, unknown>)[method] = original })
  }
  count(jsonProtocol, 'json', 'encode')
  count(jsonProtocol, 'json', 'encodeText')
  count(messagePackProtocol, 'messagepack', 'encode')

  const received = clients.map(({ conn }) => new Promise<unknown[]>((resolve) => { conn.on('News', (...args: unknown[]) => { resolve(args) }) }))
  await clients[0]!.conn.invoke('Shout', 'one broadcast')
  const got = await Promise.all(received)
  t.same(calls, { json: 1, messagepack: 1 }, 'one encoding per protocol for six receivers')
  got.forEach((args, i) => {
    const { cell } = clients[i]!
    t.equal(args[0], 'one broadcast', `${cell.name} got it`)
    if (cell.protocol === 'json') t.equal(args[1], 'Bw==', `${cell.name}: bytes as base64`)
    else t.same(Array.from(args[1] as Uint8Array), [7], `${cell.name}: bytes as bin`)
  })

  // The same from outside a hub (hubContext).
  calls.json = 0
  calls.messagepack = 0
  const again = clients.map(({ conn }) => new Promise<void>((resolve) => {
    conn.on('News', (s: unknown) => { if (s === 'from outside') resolve() })
  }))
  await app.signalr.hubContext(hub).clients.all.send('News', 'from outside', new Uint8Array([8]))
  await Promise.all(again)
  t.same(calls, { json: 1, messagepack: 1 }, 'hubContext broadcasts are encoded once per protocol too')
})
