import * as signalR from '@microsoft/signalr'
import t from 'tap'
import { jsonProtocol, safeJsonParse } from '../../lib/protocol/json.js'
import { MessageType, type HubMessage } from '../../lib/protocol/messages.js'
import { ProtocolError } from '../../lib/protocol/protocol-error.js'

const RS = '\u001e'

/** The official client's own serializer, so the inputs are byte for byte what it sends. */
const client = new signalR.JsonHubProtocol()

function clientBytes (message: signalR.HubMessage): string {
  return client.writeMessage(message) as string
}

function parse (text: string): HubMessage[] {
  const out: HubMessage[] = []
  jsonProtocol.createReader(null).read(Buffer.from(text, 'utf8'), out)
  return out
}

function parseOne (text: string): HubMessage {
  const out = parse(text)
  if (out.length !== 1) throw new Error(`expected one message, got ${out.length}`)
  return out[0]!
}

/** What the server writes, as a string (separator included). */
function encode (message: HubMessage): string {
  return jsonProtocol.encode(message).toString('utf8')
}

/** The official client's reading of what the server writes. */
function clientReads (bytes: string): signalR.HubMessage[] {
  return client.parseMessages(bytes, signalR.NullLogger.instance)
}

function protocolError (message: string): { constructor: typeof ProtocolError, message: string } {
  return { constructor: ProtocolError, message }
}

t.test('the protocol identity', async (t) => {
  t.equal(jsonProtocol.name, 'json')
  t.equal(jsonProtocol.transferFormat, 'Text')
  t.equal(jsonProtocol.version, 2, 'the official client speaks version 2 (1 in the handshake without stateful reconnect)')
})

t.test('parses every message type as the official client writes it (type last)', async (t) => {
  const cases: Array<{ name: string, sent: signalR.HubMessage, parsed: Record<string, unknown> }> = [
    {
      name: 'fire-and-forget Invocation (send)',
      sent: { target: 'Send', arguments: ['a', 1], type: signalR.MessageType.Invocation },
      parsed: { type: MessageType.Invocation, invocationId: undefined, target: 'Send', arguments: ['a', 1] }
    },
    {
      name: 'Invocation with an id (invoke)',
      sent: { target: 'Add', arguments: [1, 2], invocationId: '0', type: signalR.MessageType.Invocation },
      parsed: { type: MessageType.Invocation, invocationId: '0', target: 'Add', arguments: [1, 2] }
    },
    {
      name: 'Invocation with upload streams',
      sent: { target: 'Upload', arguments: [], invocationId: '1', streamIds: ['2', '3'], type: signalR.MessageType.Invocation },
      parsed: { type: MessageType.Invocation, invocationId: '1', target: 'Upload', arguments: [], streamIds: ['2', '3'] }
    },
    {
      name: 'StreamInvocation',
      sent: { target: 'Counter', arguments: [10, 0], invocationId: '4', type: signalR.MessageType.StreamInvocation },
      parsed: { type: MessageType.StreamInvocation, invocationId: '4', target: 'Counter', arguments: [10, 0] }
    },
    {
      name: 'StreamItem',
      sent: { invocationId: '2', item: { nested: ['x'] }, type: signalR.MessageType.StreamItem },
      parsed: { type: MessageType.StreamItem, invocationId: '2', item: { nested: ['x'] } }
    },
    {
      name: 'StreamItem whose item is null',
      sent: { invocationId: '2', item: null, type: signalR.MessageType.StreamItem },
      parsed: { type: MessageType.StreamItem, invocationId: '2', item: null }
    },
    {
      name: 'Completion with a result (client result)',
      sent: { invocationId: 's1', result: 42, type: signalR.MessageType.Completion },
      parsed: { type: MessageType.Completion, invocationId: 's1', hasResult: true, result: 42, error: undefined }
    },
    {
      name: 'Completion with a null result',
      sent: { invocationId: 's1', result: null, type: signalR.MessageType.Completion },
      parsed: { type: MessageType.Completion, invocationId: 's1', hasResult: true, result: null, error: undefined }
    },
    {
      name: 'Completion with an error',
      sent: { error: 'Error: boom', invocationId: 's2', type: signalR.MessageType.Completion },
      parsed: { type: MessageType.Completion, invocationId: 's2', hasResult: false, error: 'Error: boom' }
    },
    {
      name: 'Completion without result (end of an upload stream)',
      sent: { invocationId: '2', type: signalR.MessageType.Completion },
      parsed: { type: MessageType.Completion, invocationId: '2', hasResult: false, error: undefined }
    },
    {
      name: 'CancelInvocation',
      sent: { invocationId: '4', type: signalR.MessageType.CancelInvocation },
      parsed: { type: MessageType.CancelInvocation, invocationId: '4' }
    },
    { name: 'Ping', sent: { type: signalR.MessageType.Ping }, parsed: { type: MessageType.Ping } },
    { name: 'Close', sent: { type: signalR.MessageType.Close }, parsed: { type: MessageType.Close, error: undefined, allowReconnect: undefined } },
    {
      name: 'Close with error and allowReconnect',
      sent: { error: 'bye', allowReconnect: true, type: signalR.MessageType.Close },
      parsed: { type: MessageType.Close, error: 'bye', allowReconnect: true }
    },
    { name: 'Ack', sent: { type: signalR.MessageType.Ack, sequenceId: 3 }, parsed: { type: MessageType.Ack, sequenceId: 3 } },
    { name: 'Sequence', sent: { type: signalR.MessageType.Sequence, sequenceId: 1 }, parsed: { type: MessageType.Sequence, sequenceId: 1 } }
  ]
  for (const { name, sent, parsed } of cases) {
    const bytes = clientBytes(sent)
    // Ack and Sequence come from the client's MessageBuffer, which writes type first.
    if (sent.type <= signalR.MessageType.Close) {
      t.ok(Object.keys(sent).length === 1 || bytes.endsWith(`"type":${sent.type}}${RS}`), `${name}: type comes last in ${bytes}`)
    }
    const message = parseOne(bytes) as unknown as Record<string, unknown>
    t.match(message, parsed, name)
    for (const [key, value] of Object.entries(parsed)) {
      if (value === undefined) t.equal(message[key], undefined, `${name}: no ${key}`)
    }
  }
})

t.test('headers are read from invocations, items, completions and cancels', async (t) => {
  const headers = { trace: 'abc' }
  t.same((parseOne(JSON.stringify({ target: 'a', arguments: [], headers, type: 1 }) + RS) as { headers?: unknown }).headers, headers)
  t.same((parseOne(JSON.stringify({ invocationId: '1', item: 1, headers, type: 2 }) + RS) as { headers?: unknown }).headers, headers)
  t.same((parseOne(JSON.stringify({ invocationId: '1', result: 1, headers, type: 3 }) + RS) as { headers?: unknown }).headers, headers)
  t.same((parseOne(JSON.stringify({ invocationId: '1', headers, type: 5 }) + RS) as { headers?: unknown }).headers, headers)
})

t.test('unknown properties are skipped', async (t) => {
  t.match(parseOne('{"future":{"a":[1]},"target":"Add","arguments":[1,2],"invocationId":"7","type":1}' + RS),
    { type: 1, invocationId: '7', target: 'Add', arguments: [1, 2] })
})

t.test('a message of an unknown type is ignored, the ones around it are not', async (t) => {
  const out = parse('{"type":6}' + RS + '{"type":99,"whatever":true}' + RS + '{"invocationId":"1","type":5}' + RS)
  t.same(out.map((m) => m.type), [MessageType.Ping, MessageType.CancelInvocation])
  t.same(parse('{"type":42}' + RS), [], 'alone it yields nothing and throws nothing')
})

t.test('several messages in one chunk, in order', async (t) => {
  const bytes = clientBytes({ target: 'A', arguments: [], type: 1 }) +
    clientBytes({ type: 6 }) +
    clientBytes({ target: 'B', arguments: ['é'], invocationId: '1', type: 1 })
  const out = parse(bytes)
  t.same(out.map((m) => (m as { target?: string }).target ?? m.type), ['A', MessageType.Ping, 'B'])
})

t.test('a reader keeps an unfinished record for the next chunk', async (t) => {
  const reader = jsonProtocol.createReader(null)
  const bytes = Buffer.from(clientBytes({ target: 'Echo', arguments: ['héllo ✓'], invocationId: '3', type: 1 }), 'utf8')
  const out: HubMessage[] = []
  const cut = bytes.indexOf(Buffer.from('✓')) + 1 // inside the 3-byte character
  reader.read(bytes.subarray(0, cut), out)
  t.same(out, [], 'nothing until the separator arrives')
  reader.read(bytes.subarray(cut), out)
  t.match(out, [{ type: 1, target: 'Echo', arguments: ['héllo ✓'], invocationId: '3' }])
})

t.test('missing or malformed fields fail with ASP.NET texts', async (t) => {
  const cases: Array<[string, string]> = [
    ['{"target":"Add","arguments":[1,2],"invocationId":"1"}', "Missing required property 'type'."],
    ['{"arguments":[1,2],"invocationId":"1","type":1}', "Missing required property 'target'."],
    ['{"target":"Add","invocationId":"1","type":1}', "Missing required property 'arguments'."],
    ['{"arguments":[],"type":4}', "Missing required property 'target'."],
    ['{"target":"Counter","arguments":[],"type":4}', "Missing required property 'invocationId'."],
    ['{"item":1,"type":2}', "Missing required property 'invocationId'."],
    ['{"invocationId":"1","type":2}', "Missing required property 'item'."],
    ['{"result":1,"type":3}', "Missing required property 'invocationId'."],
    ['{"type":5}', "Missing required property 'invocationId'."],
    ['{"invocationId":"1","result":1,"error":"boom","type":3}', "The 'error' and 'result' properties are mutually exclusive."],
    ['{"invocationId":"1","error":"boom","result":null,"type":3}', "The 'error' and 'result' properties are mutually exclusive."],
    ['{"target":"Add","arguments":[1,2],"type":1', 'Error reading JSON.'],
    ['not json', 'Error reading JSON.'],
    ['', 'Error reading JSON.']
  ]
  for (const [text, message] of cases) {
    t.throws(() => parse(text + RS), protocolError(message), text === '' ? 'an empty record' : text)
  }
})

t.test('records that are not JSON objects are protocol errors', async (t) => {
  for (const text of ['[1,2]', '42', 'null', '"type"']) {
    t.throws(() => parse(text + RS), { constructor: ProtocolError, name: 'InvalidDataException' }, text)
  }
})

t.test('a protocol error is not swallowed by messages before it in the chunk', async (t) => {
  t.throws(() => parse('{"type":6}' + RS + '{"type":2}' + RS), protocolError("Missing required property 'invocationId'."))
})

t.test('__proto__ keys are dropped from what the client sends', async (t) => {
  const [message] = parse('{"target":"Merge","arguments":[{"__proto__":{"polluted":true},"a":1,"deep":{"__proto__":{"polluted":true}}}],"type":1}' + RS)
  const arg = (message as { arguments: Array<Record<string, unknown>> }).arguments[0]!
  t.notOk(Object.hasOwn(arg, '__proto__'), 'no own __proto__ key at the top')
  t.notOk(Object.hasOwn(arg.deep as object, '__proto__'), 'nor nested')
  t.equal(Object.getPrototypeOf(arg), Object.prototype)
  t.equal(arg.a, 1, 'the other keys stay')
  t.equal(Object.assign({}, arg).polluted, undefined, 'merging the value pollutes nothing')
  t.equal(({} as Record<string, unknown>).polluted, undefined)

  const ctor = safeJsonParse('{"constructor":{"prototype":{"polluted":true}},"name":"x"}') as Record<string, unknown>
  t.notOk(Object.hasOwn(ctor, 'constructor'), 'constructor.prototype is dropped too')
  t.equal(ctor.name, 'x')
  const plain = safeJsonParse('{"constructor":"Ford","model":"T"}') as Record<string, unknown>
  t.equal(plain.constructor, 'Ford', 'an innocent "constructor" value is kept')
})

// ---------------------------------------------------------------- writing

t.test('every encoded message ends with the record separator', async (t) => {
  const bytes = jsonProtocol.encode({ type: MessageType.Ping })
  t.ok(Buffer.isBuffer(bytes))
  t.equal(bytes.toString('utf8'), '{"type":6}' + RS)
})

t.test('an Invocation without invocationId omits the key (never null)', async (t) => {
  const text = encode({ type: MessageType.Invocation, target: 'ReceiveMessage', arguments: ['a', 'b'] })
  t.equal(text, '{"type":1,"target":"ReceiveMessage","arguments":["a","b"]}' + RS)
  t.same(clientReads(text), [{ type: 1, target: 'ReceiveMessage', arguments: ['a', 'b'] }])
  t.equal(encode({ type: MessageType.Invocation, invocationId: 's1', target: 'GetMessage', arguments: [] }),
    '{"type":1,"invocationId":"s1","target":"GetMessage","arguments":[]}' + RS)
  t.equal(encode({ type: MessageType.Invocation, target: 'M', arguments: [], streamIds: [] }),
    '{"type":1,"target":"M","arguments":[]}' + RS, 'an empty streamIds list is left out')
})

t.test('Completion: result null, no result, error', async (t) => {
  const nullResult = encode({ type: MessageType.Completion, invocationId: '1', hasResult: true, result: null })
  t.equal(nullResult, '{"type":3,"invocationId":"1","result":null}' + RS)
  t.equal(encode({ type: MessageType.Completion, invocationId: '1', hasResult: true, result: undefined }),
    '{"type":3,"invocationId":"1","result":null}' + RS, 'an undefined result of a void method is sent as null')
  t.equal(encode({ type: MessageType.Completion, invocationId: '1', hasResult: false }),
    '{"type":3,"invocationId":"1"}' + RS, 'a stream end carries no result')
  t.equal(encode({ type: MessageType.Completion, invocationId: '1', hasResult: false, error: 'nope' }),
    '{"type":3,"invocationId":"1","error":"nope"}' + RS)
  t.equal(encode({ type: MessageType.Completion, invocationId: '1', hasResult: true, result: 0 }),
    '{"type":3,"invocationId":"1","result":0}' + RS)
  const [read] = clientReads(nullResult) as [signalR.CompletionMessage]
  t.ok('result' in read && read.result === null, 'the client sees result: null, so invoke() resolves with null')
})

t.test('Close with and without error and allowReconnect', async (t) => {
  t.equal(encode({ type: MessageType.Close }), '{"type":7}' + RS)
  t.equal(encode({ type: MessageType.Close, error: 'Connection closed with an error.', allowReconnect: true }),
    '{"type":7,"error":"Connection closed with an error.","allowReconnect":true}' + RS)
  t.equal(encode({ type: MessageType.Close, error: 'Connection closed with an error.' }),
    '{"type":7,"error":"Connection closed with an error."}' + RS)
  t.equal(encode({ type: MessageType.Close, error: 'x', allowReconnect: false }), '{"type":7,"error":"x"}' + RS)
  t.equal(encode({ type: MessageType.Close, allowReconnect: true }), '{"type":7,"allowReconnect":true}' + RS)
})

t.test('StreamItem, CancelInvocation, Ack, Sequence', async (t) => {
  t.equal(encode({ type: MessageType.StreamItem, invocationId: '2', item: { n: 1 } }), '{"type":2,"invocationId":"2","item":{"n":1}}' + RS)
  t.equal(encode({ type: MessageType.StreamItem, invocationId: '2', item: undefined }), '{"type":2,"invocationId":"2","item":null}' + RS)
  t.equal(encode({ type: MessageType.CancelInvocation, invocationId: '2' }), '{"type":5,"invocationId":"2"}' + RS)
  t.equal(encode({ type: MessageType.Ack, sequenceId: 5 }), '{"type":8,"sequenceId":5}' + RS)
  t.equal(encode({ type: MessageType.Sequence, sequenceId: 1 }), '{"type":9,"sequenceId":1}' + RS)
})

t.test('bytes become base64, in arguments, results and items, at any depth', async (t) => {
  const bytes = Uint8Array.from([0, 1, 2, 250, 255])
  const base64 = Buffer.from(bytes).toString('base64')
  // A view into a larger buffer: only the viewed bytes may be encoded.
  const view = new Uint8Array(Uint8Array.from([9, 9, 1, 2, 3, 9]).buffer, 2, 3)
  const buffer = Buffer.from('héllo')

  const invocation = encode({
    type: MessageType.Invocation,
    target: 'Bytes',
    arguments: [bytes, buffer, view, { nested: [buffer] }, 'plain']
  })
  t.same(clientReads(invocation), [{
    type: 1,
    target: 'Bytes',
    arguments: [base64, buffer.toString('base64'), 'AQID', { nested: [buffer.toString('base64')] }, 'plain']
  }])

  t.equal(encode({ type: MessageType.Completion, invocationId: '1', hasResult: true, result: buffer }),
    `{"type":3,"invocationId":"1","result":"${buffer.toString('base64')}"}` + RS)
  t.equal(encode({ type: MessageType.Completion, invocationId: '1', hasResult: true, result: { data: bytes } }),
    `{"type":3,"invocationId":"1","result":{"data":"${base64}"}}` + RS)
  t.equal(encode({ type: MessageType.StreamItem, invocationId: '1', item: view }),
    '{"type":2,"invocationId":"1","item":"AQID"}' + RS)
  t.equal(encode({ type: MessageType.Completion, invocationId: '1', hasResult: true, result: new Uint8Array(0) }),
    '{"type":3,"invocationId":"1","result":""}' + RS, 'empty bytes are an empty string')
})

t.test('a Date becomes an ISO 8601 string', async (t) => {
  const date = new Date(Date.UTC(2024, 1, 29, 12, 30, 15, 250))
  t.equal(encode({ type: MessageType.Invocation, target: 'When', arguments: [date, { at: date }] }),
    '{"type":1,"target":"When","arguments":["2024-02-29T12:30:15.250Z",{"at":"2024-02-29T12:30:15.250Z"}]}' + RS)
  t.equal(encode({ type: MessageType.Completion, invocationId: '1', hasResult: true, result: date }),
    '{"type":3,"invocationId":"1","result":"2024-02-29T12:30:15.250Z"}' + RS)
})

t.test('headers are written only when there are some', async (t) => {
  t.equal(encode({ type: MessageType.Invocation, target: 'M', arguments: [], headers: {} }), '{"type":1,"target":"M","arguments":[]}' + RS)
  t.equal(encode({ type: MessageType.Invocation, target: 'M', arguments: [], headers: { a: 'b' } }),
    '{"type":1,"target":"M","arguments":[],"headers":{"a":"b"}}' + RS)
  t.equal(encode({ type: MessageType.Completion, invocationId: '1', hasResult: true, result: 1, headers: {} }),
    '{"type":3,"invocationId":"1","result":1}' + RS)
  t.equal(encode({ type: MessageType.StreamItem, invocationId: '1', item: 1, headers: { x: 'y' } }),
    '{"type":2,"invocationId":"1","item":1,"headers":{"x":"y"}}' + RS)
  t.equal(encode({ type: MessageType.CancelInvocation, invocationId: '1', headers: {} }), '{"type":5,"invocationId":"1"}' + RS)
})

t.test('what the server writes, the server reads back', async (t) => {
  const messages: HubMessage[] = [
    { type: MessageType.Invocation, invocationId: 's1', target: 'T', arguments: [1, 'two', { three: [3] }], headers: { h: 'v' } },
    { type: MessageType.StreamItem, invocationId: '2', item: 'x' },
    { type: MessageType.Completion, invocationId: '3', hasResult: true, result: null },
    { type: MessageType.Completion, invocationId: '4', hasResult: false, error: 'e' },
    { type: MessageType.Ping },
    { type: MessageType.Close, error: 'c', allowReconnect: true }
  ]
  const out = parse(messages.map(encode).join(''))
  t.equal(out.length, messages.length)
  messages.forEach((m, i) => t.match(out[i], m, `message ${i} (type ${m.type})`))
})
