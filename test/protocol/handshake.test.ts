import t from 'tap'
import {
  HANDSHAKE_OK, HandshakeReader, handshakeError, negotiateHandshake, scanHandshake, type HandshakeResult, type HandshakeScan
} from '../../lib/protocol/handshake.js'
import type { HubProtocol } from '../../lib/protocol/hub-protocol.js'
import { resolveProtocols } from '../../lib/protocol/index.js'
import { jsonProtocol } from '../../lib/protocol/json.js'
import { ProtocolError } from '../../lib/protocol/protocol-error.js'

const RS = '\u001e'
const UNEXPECTED = 'An unexpected error occurred during connection handshake.'
const CANCELED = 'Handshake was canceled.'

/** Stands in for a binary protocol; only its identity matters to the handshake. */
const fakeBinary: HubProtocol = {
  name: 'messagepack',
  version: 2,
  transferFormat: 'Binary',
  slot: -1,
  definition: jsonProtocol.definition,
  createReader () { throw new Error('not used by the handshake') },
  encode () { throw new Error('not used by the handshake') },
  encodeText: undefined,
  encodeResult: undefined
}

const jsonOnly = resolveProtocols(['json'])
const both = new Map<string, HubProtocol>([['json', jsonProtocol], ['messagepack', fakeBinary]])
const WEBSOCKETS = ['Text', 'Binary'] as const
const SSE = ['Text'] as const

function request (protocol: unknown, version: unknown): string {
  return JSON.stringify({ protocol, version })
}

function failure (result: HandshakeResult): { error: string, detail?: string } {
  if (result.ok) throw new Error('expected the handshake to fail')
  return result
}

t.test('the answers on the wire', async (t) => {
  t.equal(HANDSHAKE_OK.toString('utf8'), '{}' + RS, 'success is exactly {} + RS')
  t.equal(handshakeError("The protocol 'x' is not supported.").toString('utf8'),
    '{"error":"The protocol \'x\' is not supported."}' + RS)
  t.notOk(HANDSHAKE_OK.toString('utf8').includes('type'), 'a type key would make the client fail')
})

t.test('success', async (t) => {
  const result = negotiateHandshake(request('json', 1), jsonOnly, WEBSOCKETS)
  t.ok(result.ok)
  if (result.ok) {
    t.equal(result.protocol, jsonProtocol)
    t.equal(result.version, 1)
  }
  t.match(negotiateHandshake(request('json', 2), jsonOnly, WEBSOCKETS), { ok: true, version: 2 }, 'version 2 (stateful reconnect)')
  t.match(negotiateHandshake(request('json', 1), jsonOnly, SSE), { ok: true }, 'json is Text, fine on SSE')
  t.match(negotiateHandshake('{"version":1,"protocol":"json","extra":[1]}', jsonOnly, WEBSOCKETS), { ok: true },
    'key order is free and unknown keys are ignored')
  t.match(negotiateHandshake(request('messagepack', 1), both, WEBSOCKETS), { ok: true, protocol: fakeBinary })
})

t.test('protocol names match case-insensitively', async (t) => {
  for (const name of ['JSON', 'Json', 'jSoN']) {
    t.match(negotiateHandshake(request(name, 1), jsonOnly, WEBSOCKETS), { ok: true, protocol: jsonProtocol }, name)
  }
  t.match(negotiateHandshake(request('MessagePack', 1), both, WEBSOCKETS), { ok: true, protocol: fakeBinary })
})

t.test('unknown or disabled protocol', async (t) => {
  t.same(failure(negotiateHandshake(request('foo', 1), jsonOnly, WEBSOCKETS)), { ok: false, error: "The protocol 'foo' is not supported." })
  t.same(failure(negotiateHandshake(request('messagepack', 1), jsonOnly, WEBSOCKETS)),
    { ok: false, error: "The protocol 'messagepack' is not supported." }, 'known, but not enabled for this hub')
  t.equal(failure(negotiateHandshake(request('Foo', 1), jsonOnly, WEBSOCKETS)).error, "The protocol 'Foo' is not supported.",
    'the name is echoed as sent')
  t.equal(failure(negotiateHandshake(request('json', 1), new Map(), WEBSOCKETS)).error, "The protocol 'json' is not supported.")
})

t.test('version too high', async (t) => {
  t.same(failure(negotiateHandshake(request('json', 3), jsonOnly, WEBSOCKETS)),
    { ok: false, error: "The server does not support version 3 of the 'json' protocol." })
  t.equal(failure(negotiateHandshake(request('JSON', 99), jsonOnly, WEBSOCKETS)).error,
    "The server does not support version 99 of the 'JSON' protocol.")
})

t.test('a Binary protocol on a Text-only transport', async (t) => {
  t.same(failure(negotiateHandshake(request('messagepack', 1), both, SSE)), {
    ok: false,
    error: "Cannot use the 'messagepack' protocol on the current transport. The transport does not support 'Binary' transfer format."
  })
  t.equal(failure(negotiateHandshake(request('MessagePack', 1), both, SSE)).error,
    "Cannot use the 'MessagePack' protocol on the current transport. The transport does not support 'Binary' transfer format.")
})

t.test('malformed requests: the generic text, the reason only as detail', async (t) => {
  const cases: Array<[string, string]> = [
    ['{"protocol":"json",', 'truncated JSON'],
    ['not json', 'not JSON at all'],
    ['', 'empty'],
    ['[]', 'an array'],
    ['"json"', 'a string'],
    ['null', 'null'],
    ['{"version":1}', 'missing protocol'],
    ['{"protocol":"json"}', 'missing version'],
    ['{"protocol":1,"version":1}', 'protocol not a string'],
    ['{"protocol":"json","version":"1"}', 'version not a number'],
    ['{"protocol":"json","version":1.5}', 'version not an integer'],
    ['{"type":6}', 'a hub message instead of a handshake'],
    ['{"arguments":[],"target":"Send","type":1}', 'an invocation instead of a handshake']
  ]
  for (const [text, name] of cases) {
    const result = failure(negotiateHandshake(text, both, WEBSOCKETS))
    t.equal(result.error, UNEXPECTED, name)
    t.match(result.detail, /^InvalidDataException: \S/, `${name}: detail for enableDetailedErrors`)
  }
  t.match(failure(negotiateHandshake('{"version":1}', both, WEBSOCKETS)).detail, /'protocol'/)
  t.match(failure(negotiateHandshake('{"protocol":"json"}', both, WEBSOCKETS)).detail, /'version'/)
})

t.test('a __proto__ key in the request changes nothing', async (t) => {
  t.match(negotiateHandshake('{"__proto__":{"protocol":"foo"},"protocol":"json","version":1}', jsonOnly, WEBSOCKETS), { ok: true })
  t.equal(failure(negotiateHandshake('{"__proto__":{"protocol":"json","version":1}}', jsonOnly, WEBSOCKETS)).error, UNEXPECTED,
    'fields hidden in __proto__ do not count')
})

// ---------------------------------------------------------------- finding the handshake record

t.test('scanHandshake waits for the separator', async (t) => {
  t.same(scanHandshake(Buffer.from('{"protocol":"json"'), null), { done: false })
  t.same(scanHandshake(Buffer.alloc(0), 1024), { done: false })
})

t.test('bytes after the separator are returned as rest', async (t) => {
  const hubBytes = '{"type":6}' + RS + '{"target":"A","arguments":[],"type":1}' + RS + '{"type":'
  const scan = scanHandshake(Buffer.from(request('json', 1) + RS + hubBytes, 'utf8'), 1024)
  t.equal(scan.done, true)
  if (scan.done) {
    t.equal(scan.request, request('json', 1))
    t.ok(Buffer.isBuffer(scan.rest))
    t.equal(scan.rest.toString('utf8'), hubBytes, 'whole and partial hub messages are kept, byte for byte')
  }

  const alone = scanHandshake(Buffer.from(request('json', 1) + RS), 1024)
  t.match(alone, { done: true, request: request('json', 1) })
  if (alone.done) t.equal(alone.rest.length, 0, 'nothing after the handshake: an empty rest')

  const binary = Buffer.concat([Buffer.from(request('messagepack', 1) + RS), Buffer.from([0x02, 0x91, 0x06, 0x1e, 0xff])])
  const binaryScan = scanHandshake(binary, 1024)
  if (binaryScan.done) {
    t.same([...binaryScan.rest], [0x02, 0x91, 0x06, 0x1e, 0xff], 'binary bytes after the handshake are untouched, 0x1e included')
  } else {
    t.fail('the handshake should be complete')
  }
})

t.test('a multi-byte character in the handshake survives', async (t) => {
  const text = '{"protocol":"jsön","version":1}'
  const scan = scanHandshake(Buffer.from(text + RS, 'utf8'), 1024)
  t.match(scan, { done: true, request: text })
})

t.test('handshake size limit: Handshake was canceled.', async (t) => {
  const canceled = { constructor: ProtocolError, message: CANCELED }
  // As in ASP.NET, the handshake and its separator together must fit in the limit.
  t.match(scanHandshake(Buffer.from('x'.repeat(31) + RS), 32), { done: true }, '31 bytes + RS fit in 32')
  t.throws(() => scanHandshake(Buffer.from('x'.repeat(32) + RS), 32), canceled, '32 bytes + RS do not')
  t.throws(() => scanHandshake(Buffer.from('x'.repeat(100) + RS), 32), canceled)
  t.same(scanHandshake(Buffer.from('x'.repeat(32)), 32), { done: false }, 'unterminated, at the limit: wait')
  t.throws(() => scanHandshake(Buffer.from('x'.repeat(33)), 32), canceled, 'unterminated, past the limit: refused at once')
  t.match(scanHandshake(Buffer.from(request('json', 1) + RS + 'y'.repeat(1000)), 32), { done: true },
    'what follows the handshake does not count toward its limit')
  t.match(scanHandshake(Buffer.from('x'.repeat(100_000) + RS), null), { done: true }, 'null: no limit')
})

t.test('HandshakeReader: a handshake trickled one byte per chunk', async (t) => {
  const request = JSON.stringify({ protocol: 'json', version: 1, padding: 'p'.repeat(20_000) })
  const bytes = Buffer.from(request + RS + 'rest', 'utf8')
  const reader = new HandshakeReader(null)
  let scan: HandshakeScan = { done: false }
  let i = 0
  for (; i < bytes.length && !scan.done; i++) scan = reader.read(bytes.subarray(i, i + 1))
  t.same(scan, { done: true, request, rest: Buffer.alloc(0) }, 'the record is whole and nothing after the separator was read yet')
  t.equal(i, request.length + 1)
  const held = reader.memory
  t.equal(held.buffered, 0, 'released once the record is out')
  t.ok(held.allocations <= Math.ceil(Math.log2(request.length / 256)) + 1, `${held.allocations} allocations, not one per chunk`)
  t.ok(held.copied <= 3 * request.length, `linear copying: ${held.copied} bytes for ${request.length}`)
})

t.test('HandshakeReader: the rest of the chunk that ends the handshake belongs to the hub protocol', async (t) => {
  const reader = new HandshakeReader(100)
  t.same(reader.read(Buffer.from('{"protocol":')), { done: false })
  t.ok(reader.memory.buffered > 0)
  const scan = reader.read(Buffer.from(`"json","version":1}${RS}{"type":6}${RS}`))
  t.same(scan, { done: true, request: '{"protocol":"json","version":1}', rest: Buffer.from(`{"type":6}${RS}`) })
})

t.test('HandshakeReader: the limit counts the bytes of every chunk', async (t) => {
  const reader = new HandshakeReader(10)
  t.same(reader.read(Buffer.from('x'.repeat(10))), { done: false }, 'exactly the limit without a separator: wait')
  t.throws(() => reader.read(Buffer.from('x')), { constructor: ProtocolError, message: CANCELED })
  t.equal(reader.memory.retained, 0, 'nothing of a refused handshake stays buffered')
  const ending = new HandshakeReader(10)
  t.same(ending.read(Buffer.from('x'.repeat(10))), { done: false })
  t.throws(() => ending.read(Buffer.from(RS)), { constructor: ProtocolError, message: CANCELED }, 'record + RS must fit')
})

t.test('HandshakeReader: a handshake that is not UTF-8 gets the unexpected-error answer', async (t) => {
  const reader = new HandshakeReader(null)
  t.same(reader.read(Buffer.from('{"protocol":"json\xff', 'latin1')), { done: false })
  t.throws(() => reader.read(Buffer.from(`","version":1}${RS}`)), { constructor: ProtocolError, message: UNEXPECTED })
})
