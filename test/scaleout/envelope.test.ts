// The SEND envelope's optional fifth element: encodings of further protocols by name.
import t from 'tap'
import { newOrigin, pack, SEND, unpack } from '../../lib/lifetime/envelope.js'

const origin = newOrigin().bytes
const target = { kind: 'all', exclude: null } as const
const json = Buffer.from('j')
const binary = Buffer.from('m')

t.test('a send with further encodings round-trips', async (t) => {
  const envelope = unpack(pack(origin, [SEND, target, json, binary, { lines: Buffer.from('l\n') }]))
  t.not(typeof envelope, 'string')
  const [, , , , others] = envelope as unknown as [number, unknown, Uint8Array, Uint8Array, Record<string, Uint8Array>]
  t.same(Object.keys(others), ['lines'])
  t.equal(Buffer.from(others.lines!).toString(), 'l\n')
  t.not(typeof unpack(pack(origin, [SEND, target, json, binary])), 'string', 'and without them')
})

t.test('a fifth element that is not a map of bytes is refused', async (t) => {
  for (const others of [null, 'x', [Buffer.from('l')], { lines: 'text' }, { lines: Buffer.from('l'), other: 1 }]) {
    t.equal(unpack(pack(origin, [SEND, target, json, binary, others as never])), 'not a valid send', JSON.stringify(others))
  }
  t.equal(unpack(pack(origin, [SEND, target, json, binary, {}, 'extra'] as never)), 'not a valid send', 'six elements')
})
