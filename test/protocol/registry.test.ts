import Fastify from 'fastify'
import t from 'tap'
import signalr, { defineHub, defineHubProtocol, recordSeparatorFraming, type HubProtocolDefinition } from '../../lib/index.js'
import { resolveProtocols } from '../../lib/protocol/index.js'
import { jsonProtocol } from '../../lib/protocol/json.js'
import { messagePackProtocol } from '../../lib/protocol/messagepack.js'
import { registerProtocol } from '../../lib/protocol/registry.js'
import { LineProtocol } from '../helpers/line-protocol.js'

const valid: HubProtocolDefinition<string> = {
  name: 'plain',
  version: 1,
  transferFormat: 'text',
  framing: recordSeparatorFraming,
  parse: () => undefined,
  write: () => Buffer.alloc(0)
}

async function registerError (protocols: unknown): Promise<Error> {
  const app = Fastify()
  try {
    await app.register(signalr, { protocols } as never)
    await app.ready()
  } catch (err) {
    return err as Error
  } finally {
    await app.close()
  }
  throw new Error('register accepted the protocols')
}

t.test('mistakes in the protocols option fail at register, naming the protocol and the field', async (t) => {
  const cases: Array<[string, unknown, RegExp]> = [
    ['an unknown name', ['json', 'xml'], /option "protocols" names an unknown protocol 'xml' \(built in: 'json', 'messagepack'/],
    ['a name twice', ['json', 'json'], /option "protocols" lists protocol 'json' twice/],
    ['two objects with one name, up to case', [new LineProtocol(), { ...valid, name: 'LINES' }], /lists protocol 'LINES' twice/],
    ['an object under a built-in name', [{ ...valid, name: 'Json' }], /protocol object named 'Json', the name of a built-in protocol/],
    ['no protocol', [], /option "protocols" must name at least one protocol/],
    ['not an array', 'json', /option "protocols" must be an array/],
    ['not a name nor an object', [42], /a protocol must be a name or an object/],
    ['no name', [{ ...valid, name: '' }], /a protocol object needs a name/],
    ['a bad version', [{ ...valid, version: 0 }], /protocol 'plain': version must be an integer of at least 1/],
    ['a bad transfer format', [{ ...valid, transferFormat: 'Text' }], /protocol 'plain': transferFormat must be 'text' or 'binary'/],
    ['no framing', [{ ...valid, framing: undefined }], /protocol 'plain': framing must be an object with createSplitter/],
    ['no parse', [{ ...valid, parse: 'x' }], /protocol 'plain': parse\(record\) must be a function/],
    ['no write', [{ ...valid, write: undefined }], /protocol 'plain': write\(message\) must be a function/],
    ['a bad writeText', [{ ...valid, writeText: 1 }], /protocol 'plain': writeText, when given, must be a function/],
    ['a bad writeResult', [{ ...valid, writeResult: 'x' }], /protocol 'plain': writeResult, when given, must be a function/]
  ]
  for (const [what, protocols, message] of cases) {
    const err = await registerError(protocols)
    t.match(err, { code: 'SIGNALR_ERR_INVALID_OPTION', message }, what)
  }
})

t.test('mapHub checks its own protocols the same way', async (t) => {
  const app = Fastify()
  t.teardown(() => app.close())
  await app.register(signalr)
  const hub = defineHub({ methods: {} })
  t.throws(() => app.mapHub('/h', hub, { protocols: ['json', { ...valid, parse: undefined } as never] }),
    { code: 'SIGNALR_ERR_INVALID_OPTION', message: /mapHub\('\/h'\): option "protocols" has an invalid entry: protocol 'plain': parse/ })
  t.doesNotThrow(() => app.mapHub('/ok', hub, { protocols: [valid, 'messagepack'] }))
})

t.test('defineHubProtocol checks the shape where the protocol is written', async (t) => {
  t.equal(defineHubProtocol(valid), valid, 'a valid definition comes back as it is')
  t.throws(() => defineHubProtocol({ ...valid, transferFormat: 'binary', framing: {} } as never),
    { code: 'SIGNALR_ERR_INVALID_OPTION', message: /defineHubProtocol: protocol 'plain': framing/ })
})

t.test('one registration per definition: the same slot in every app, a new one for a new definition', async (t) => {
  const first = registerProtocol(valid)
  t.equal(registerProtocol(valid), first)
  const other = registerProtocol({ ...valid })
  t.not(other.slot, first.slot)
  t.not(first.slot, jsonProtocol.slot)
  t.not(first.slot, messagePackProtocol.slot)
  t.equal(first.transferFormat, 'Text')
  const resolved = resolveProtocols(['messagepack', { ...valid, name: 'Plain' }])
  t.same([...resolved.keys()], ['messagepack', 'plain'], 'keyed by lower-case name, for the handshake')
  t.equal(resolved.get('messagepack'), messagePackProtocol, 'names resolve to the built-in registrations')
})
