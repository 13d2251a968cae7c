import t from 'tap'
import { ProtocolError } from '../../lib/protocol/protocol-error.js'
import { RECORD_SEPARATOR, RECORD_SEPARATOR_CHAR, TextRecordSplitter } from '../../lib/protocol/text-framing.js'

const RS = RECORD_SEPARATOR_CHAR

function split (splitter: TextRecordSplitter, chunk: string | Buffer): string[] {
  const out: string[] = []
  splitter.split(typeof chunk === 'string' ? Buffer.from(chunk, 'utf8') : chunk, out)
  return out
}

function tooLarge (limit: number): { constructor: typeof ProtocolError, message: RegExp } {
  return { constructor: ProtocolError, message: new RegExp(`^The maximum message size of ${limit}B was exceeded\\.`) }
}

t.test('the separator is 0x1e', async (t) => {
  t.equal(RECORD_SEPARATOR, 0x1e)
  t.equal(RS, '\u001e')
})

t.test('several records in one chunk come out in order, without separators', async (t) => {
  const splitter = new TextRecordSplitter(null)
  t.same(split(splitter, `{"type":6}${RS}{"a":1}${RS}x${RS}`), ['{"type":6}', '{"a":1}', 'x'])
  t.equal(splitter.hasPartialRecord, false)
  t.same(split(splitter, `${RS}${RS}`), ['', ''], 'empty records are records (the JSON parser rejects them)')
})

t.test('a chunk may end in the middle of a record', async (t) => {
  const splitter = new TextRecordSplitter(null)
  t.same(split(splitter, `one${RS}tw`), ['one'])
  t.equal(splitter.hasPartialRecord, true)
  t.same(split(splitter, 'o'), [], 'still no separator')
  t.same(split(splitter, `${RS}three${RS}fo`), ['two', 'three'])
  t.same(split(splitter, `ur${RS}`), ['four'])
  t.equal(splitter.hasPartialRecord, false)
})

t.test('a record split inside a multi-byte UTF-8 character', async (t) => {
  const text = 'é€😀✓'
  const bytes = Buffer.from(text + RS, 'utf8')
  // Every cut position, including the ones inside a 2-, 3- and 4-byte sequence.
  for (let cut = 1; cut < bytes.length; cut++) {
    const splitter = new TextRecordSplitter(null)
    const first = split(splitter, bytes.subarray(0, cut))
    const second = split(splitter, bytes.subarray(cut))
    t.same([...first, ...second], [text], `cut at byte ${cut}`)
  }
  const splitter = new TextRecordSplitter(null)
  const out: string[] = []
  for (const byte of bytes) splitter.split(Buffer.from([byte]), out)
  t.same(out, [text], 'one byte at a time')
})

t.test('the carried-over bytes are a copy, not the caller\'s buffer', async (t) => {
  const splitter = new TextRecordSplitter(null)
  const chunk = Buffer.from('abc', 'utf8')
  t.same(split(splitter, chunk), [])
  chunk.fill(0x7a) // a transport may reuse its buffers
  t.same(split(splitter, RS), ['abc'])
})

t.test('size limit: a complete record', async (t) => {
  // As in ASP.NET, the record and its separator together must fit in the limit.
  t.same(split(new TextRecordSplitter(10), 'x'.repeat(9) + RS), ['x'.repeat(9)], '9 bytes + RS fit in 10')
  t.throws(() => split(new TextRecordSplitter(10), 'x'.repeat(10) + RS), tooLarge(10), '10 bytes + RS do not')
  t.throws(() => split(new TextRecordSplitter(10), 'x'.repeat(50) + RS), tooLarge(10))
  t.throws(() => split(new TextRecordSplitter(10), `ok${RS}${'x'.repeat(11)}${RS}ok${RS}`), tooLarge(10),
    'found while scanning a chunk that also holds valid records')
  t.throws(() => split(new TextRecordSplitter(4), '€€' + RS), tooLarge(4), 'the limit counts bytes, not characters')
  t.same(split(new TextRecordSplitter(7), '€€' + RS), ['€€'])
})

t.test('size limit: a complete record assembled from several chunks', async (t) => {
  const splitter = new TextRecordSplitter(10)
  t.same(split(splitter, 'x'.repeat(6)), [])
  t.throws(() => split(splitter, 'x'.repeat(4) + RS), tooLarge(10))
})

t.test('size limit: an unterminated record fails before its separator arrives', async (t) => {
  const splitter = new TextRecordSplitter(10)
  t.same(split(splitter, 'x'.repeat(10)), [], 'exactly the limit without a separator: wait for more, as ASP.NET does')
  t.throws(() => split(splitter, 'x'), tooLarge(10), 'one byte more and it is refused at once')

  t.throws(() => split(new TextRecordSplitter(10), 'x'.repeat(1000)), tooLarge(10), 'a single large chunk with no separator')

  const growing = new TextRecordSplitter(100)
  for (let i = 0; i < 10; i++) t.same(split(growing, 'y'.repeat(10)), [])
  t.throws(() => split(growing, 'y'), tooLarge(100), 'an endless record is never buffered past the limit')

  t.throws(() => split(new TextRecordSplitter(10), `ok${RS}${'x'.repeat(11)}`), tooLarge(10),
    'after a valid record in the same chunk')
})

t.test('the limit applies to each record, not to a chunk', async (t) => {
  const splitter = new TextRecordSplitter(10)
  const record = 'z'.repeat(9)
  t.same(split(splitter, (record + RS).repeat(20)), Array(20).fill(record))
  t.same(split(splitter, record.slice(0, 4)), [])
  t.same(split(splitter, record.slice(4) + RS + record + RS), [record, record], 'a record spanning chunks is measured whole')
})

t.test('null means no limit', async (t) => {
  const big = 'b'.repeat(2 * 1024 * 1024)
  const splitter = new TextRecordSplitter(null)
  t.same(split(splitter, big.slice(0, 1024 * 1024)), [])
  t.same(split(splitter, big.slice(1024 * 1024) + RS), [big])
})

t.test('state after an error', async (t) => {
  t.test('records before the oversized one were delivered', async (t) => {
    const splitter = new TextRecordSplitter(10)
    const out: string[] = []
    t.throws(() => splitter.split(Buffer.from(`a${RS}b${RS}${'x'.repeat(20)}${RS}c${RS}`), out), tooLarge(10))
    t.same(out, ['a', 'b'], 'nothing after the bad record')
  })

  t.test('an oversized complete record leaves nothing buffered', async (t) => {
    const splitter = new TextRecordSplitter(10)
    t.same(split(splitter, 'xxxxx'), [])
    t.equal(splitter.hasPartialRecord, true)
    t.throws(() => split(splitter, `${'x'.repeat(10)}${RS}tail`), tooLarge(10))
    t.equal(splitter.hasPartialRecord, false, 'the partial record and the tail are released')
    t.same(split(splitter, `next${RS}`), ['next'], 'no byte of the failed chunk leaks into later records')
  })

  t.test('an oversized unterminated record leaves nothing buffered', async (t) => {
    const splitter = new TextRecordSplitter(10)
    t.same(split(splitter, 'x'.repeat(8)), [])
    t.throws(() => split(splitter, 'x'.repeat(8)), tooLarge(10))
    t.equal(splitter.hasPartialRecord, false, 'the oversized bytes are not kept')
    t.same(split(splitter, `next${RS}`), ['next'])
  })
})

t.test('memory: a record trickled one byte per chunk', async (t) => {
  const size = 100_000
  const record = Buffer.alloc(size, 0x61)
  const splitter = new TextRecordSplitter(null)
  const out: string[] = []
  for (let i = 0; i < size; i++) splitter.split(record.subarray(i, i + 1), out)
  const held = splitter.memory
  t.equal(held.buffered, size, 'every byte is held once')
  t.ok(held.retained >= size && held.retained <= 2 * size, `one buffer at most twice the bytes (${held.retained} for ${size})`)
  t.ok(held.allocations <= Math.ceil(Math.log2(size / 256)) + 1, `the buffer doubles: ${held.allocations} allocations, not one per chunk`)
  t.ok(held.copied <= 3 * size, `linear copying: ${held.copied} bytes copied for ${size}`)
  splitter.split(Buffer.from(RS), out)
  t.same(out, ['a'.repeat(size)])
  t.same({ buffered: splitter.memory.buffered, retained: splitter.memory.retained }, { buffered: 0, retained: 0 },
    'the buffer is released once the record is out')
})

t.test('memory: one allocation per record that spans chunks', async (t) => {
  const splitter = new TextRecordSplitter(1000)
  const out: string[] = []
  const records = 500
  for (let i = 0; i < records; i++) {
    const text = `{"type":1,"target":"m","arguments":[${i}]}`
    // Cut every record in three, the separator travelling with the next record's head.
    const bytes = Buffer.from(text + RS)
    splitter.split(bytes.subarray(0, 5), out)
    splitter.split(bytes.subarray(5, 20), out)
    splitter.split(bytes.subarray(20), out)
  }
  t.equal(out.length, records)
  t.equal(out[records - 1], `{"type":1,"target":"m","arguments":[${records - 1}]}`)
  t.equal(splitter.memory.allocations, records, 'the pieces of a record are joined into one buffer, once')
})

t.test('memory: the buffer never outgrows the limit', async (t) => {
  const splitter = new TextRecordSplitter(1000)
  for (let i = 0; i < 1000; i++) splitter.split(Buffer.from('x'), [])
  t.equal(splitter.memory.buffered, 1000)
  t.equal(splitter.memory.retained, 1000, 'the last doubling stops at the limit')
  t.throws(() => splitter.split(Buffer.from('x'), []), tooLarge(1000))
  t.equal(splitter.memory.retained, 0, 'a refused record releases its buffer')
})

t.test('a record that is not UTF-8 is a ProtocolError; the records before it were delivered', async (t) => {
  const bad = Buffer.concat([Buffer.from(`ok${RS}`), Buffer.from([0x7b, 0xff, 0x7d, RECORD_SEPARATOR]), Buffer.from(`after${RS}`)])
  const out: string[] = []
  t.throws(() => new TextRecordSplitter(null).split(bad, out), { constructor: ProtocolError, message: 'The record is not valid UTF-8.' })
  t.same(out, ['ok'])
  const joined = new TextRecordSplitter(null)
  t.same(split(joined, Buffer.from([0x61, 0xc3])), [], 'a character cut at the chunk end is not judged yet')
  t.throws(() => split(joined, Buffer.from([0x28, RECORD_SEPARATOR])), { constructor: ProtocolError, message: 'The record is not valid UTF-8.' }, 'but it must be completed by the record\'s next bytes')
  t.equal(joined.hasPartialRecord, false)
})
