import t from 'tap'
import { createRequire } from 'node:module'
import { encodeFrame, encodeTextFrame } from '../../lib/transports/websocket-frame.js'

// ws exports its Sender and Receiver at run time; @types/ws does not declare them.
const ws = createRequire(import.meta.url)('ws') as {
  Sender: { frame (data: Buffer, options: Record<string, unknown>): Buffer[] }
  Receiver: new (options: { isServer: boolean }) => NodeJS.EventEmitter & { write (chunk: Buffer): void }
}
const { Sender, Receiver } = ws

/** What ws itself would put on the wire for an unmasked server frame. */
function wsFrame (payload: Buffer, binary: boolean): Buffer {
  const list = Sender.frame(payload, { fin: true, rsv1: false, opcode: binary ? 2 : 1, mask: false, readOnly: false })
  return Buffer.concat(list)
}

t.test('frames match ws byte for byte at every length boundary', async (t) => {
  for (const length of [0, 1, 125, 126, 127, 65535, 65536, 70000]) {
    const payload = Buffer.alloc(length, 0x61)
    t.same(encodeFrame(payload, false), wsFrame(payload, false), `text, ${length} bytes`)
    t.same(encodeFrame(payload, true), wsFrame(payload, true), `binary, ${length} bytes`)
  }
  for (const text of ['', '{"type":6}\u001e', 'é'.repeat(63), 'é'.repeat(64), '✓'.repeat(30000)]) {
    t.same(encodeTextFrame(text), wsFrame(Buffer.from(text), false), `text from a string of ${Buffer.byteLength(text)} bytes`)
  }
})

t.test('a ws client-side receiver reads our frames back', async (t) => {
  const receiver = new Receiver({ isServer: false })
  const got: Array<{ data: Buffer, binary: boolean }> = []
  receiver.on('message', (data: Buffer, binary: boolean) => { got.push({ data, binary }) })
  const texts = ['{"type":6}\u001e', 'é'.repeat(200)]
  receiver.write(Buffer.concat([encodeFrame(Buffer.from(texts[0]!), false), encodeFrame(Buffer.from(texts[1]!), false), encodeFrame(Buffer.from([1, 2, 3]), true)]))
  t.same(got.map((g) => g.binary), [false, false, true])
  t.equal(got[0]!.data.toString(), texts[0])
  t.equal(got[1]!.data.toString(), texts[1])
  t.same([...got[2]!.data], [1, 2, 3])
})
