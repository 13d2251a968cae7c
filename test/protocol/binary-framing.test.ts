import t from 'tap'
import { BinaryMessageSplitter, frameBinary, writeLengthPrefix } from '../../lib/protocol/binary-framing.js'
import { ProtocolError } from '../../lib/protocol/protocol-error.js'

function body (size: number, seed: number): Buffer {
  const out = Buffer.allocUnsafe(size)
  for (let i = 0; i < size; i++) out[i] = (i * 31 + seed) & 0xff
  return out
}

t.test('memory: a message trickled one byte per chunk', async (t) => {
  const size = 100_000
  const payload = body(size, 7)
  const framed = frameBinary(payload)
  const splitter = new BinaryMessageSplitter(null)
  const out: Buffer[] = []
  for (let i = 0; i < framed.length - 1; i++) splitter.split(framed.subarray(i, i + 1), out)
  const held = splitter.memory
  t.equal(held.buffered, framed.length - 1)
  t.ok(held.retained <= framed.length, `the doublings stop at the size the prefix announced (${held.retained})`)
  t.ok(held.allocations <= Math.ceil(Math.log2(size / 256)) + 2, `${held.allocations} allocations, not one per chunk`)
  t.ok(held.copied <= 3 * framed.length, `linear copying: ${held.copied} bytes for ${framed.length}`)
  splitter.split(framed.subarray(framed.length - 1), out)
  t.equal(out.length, 1)
  t.ok(out[0]!.equals(payload))
  t.equal(splitter.memory.retained, 0, 'released once the message is out')
})

t.test('memory: a length prefix alone does not reserve the message', async (t) => {
  const splitter = new BinaryMessageSplitter(2 * 1024 * 1024)
  splitter.split(writeLengthPrefix(2 * 1024 * 1024), [])
  splitter.split(Buffer.from([1, 2, 3]), [])
  t.ok(splitter.memory.retained <= 256, `a 2 MiB announcement costs ${splitter.memory.retained} bytes until the bytes come`)
})

t.test('memory: one allocation per message that spans chunks', async (t) => {
  const splitter = new BinaryMessageSplitter(1000)
  const out: Buffer[] = []
  const messages = 300
  for (let i = 0; i < messages; i++) {
    const framed = frameBinary(body(150, i))
    splitter.split(framed.subarray(0, 1), out)
    splitter.split(framed.subarray(1, 40), out)
    splitter.split(framed.subarray(40), out)
  }
  t.equal(out.length, messages)
  t.equal(splitter.memory.allocations, messages, 'the cut prefix and its body share one buffer: one allocation per message')
  t.ok(out.every((b, i) => b.equals(body(150, i))), 'every message is intact')
})

t.test('bodies handed out stay intact while later chunks arrive', async (t) => {
  const splitter = new BinaryMessageSplitter(null)
  const framed = Buffer.concat([frameBinary(body(300, 1)), frameBinary(body(300, 2)), frameBinary(body(10, 3))])
  const out: Buffer[] = []
  // Cuts inside the first body, inside the second prefix, inside the second body.
  for (const [from, to] of [[0, 100], [100, 302], [302, 303], [303, 500], [500, framed.length]] as const) {
    const chunk = Buffer.from(framed.subarray(from, to))
    splitter.split(chunk, out)
    chunk.fill(0) // a transport may reuse its buffers once the bodies were read
  }
  t.equal(out.length, 3)
  t.ok(out[0]!.equals(body(300, 1)))
  t.ok(out[1]!.equals(body(300, 2)))
  t.equal(out[2]!.length, 10, 'the last body came whole in its chunk (a view the caller decodes before reusing the chunk)')
})

t.test('a refused message leaves nothing buffered', async (t) => {
  const splitter = new BinaryMessageSplitter(100)
  splitter.split(Buffer.from([0x80]), [])
  t.equal(splitter.hasPartialMessage, true, 'a cut prefix is kept')
  t.throws(() => splitter.split(Buffer.from([0x01]), []), { constructor: ProtocolError, message: /^The maximum message size of 100B/ })
  t.equal(splitter.hasPartialMessage, false)
  t.equal(splitter.memory.retained, 0)
  t.throws(() => new BinaryMessageSplitter(null).split(Buffer.from([0xff, 0xff, 0xff, 0xff, 0x08]), []),
    { constructor: ProtocolError, message: 'Messages bigger than 2GB are not supported.' })
})
