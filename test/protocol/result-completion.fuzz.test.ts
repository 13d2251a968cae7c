/**
 * The protocols' direct Completion writers (`encodeResult`) against `encode`
 * of the same Completion message: the same bytes, or the same error, for
 * generated ids and results. Seed and runs as in the other fuzz tests:
 *   FUZZ_RUNS=100000 FUZZ_SEED=$RANDOM npx tap test/protocol/result-completion.fuzz.test.ts
 */
import fc from 'fast-check'
import t from 'tap'
import type { HubProtocol } from '../../lib/protocol/hub-protocol.js'
import { jsonProtocol } from '../../lib/protocol/json.js'
import { messagePackProtocol } from '../../lib/protocol/messagepack.js'
import { checkProperty } from '../helpers/framing-fuzz.js'
import { wireValue } from '../helpers/hub-message-fuzz.js'

type Written = { bytes: string } | { error: string }

function written (write: () => Buffer): Written {
  try {
    return { bytes: write().toString('hex') }
  } catch (err) {
    return { error: `${(err as Error).name}: ${(err as Error).message}` }
  }
}

/** Counter ids as the clients make them, and ids the writers must leave to `encode`. */
const id = fc.oneof(
  fc.nat().map(String), fc.nat().map(String),
  fc.string({ maxLength: 40 }), fc.string({ unit: 'binary', maxLength: 6 }),
  fc.constantFrom('', 'a"b', 'a\\b', '\u0001', 'é', '\ud800', 'x'.repeat(31), 'x'.repeat(32))
)

const deep = fc.integer({ min: 500, max: 600 }).map((n) => {
  let v: unknown = 1
  for (let i = 0; i < n; i++) v = [v]
  return v
})

const result = fc.oneof(
  wireValue([fc.uint8Array({ maxLength: 6 }), fc.date({ noInvalidDate: true }), fc.bigInt({ min: -(2n ** 60n), max: 2n ** 60n })]),
  fc.constantFrom(undefined, null, { toJSON: () => undefined }, { toJSON: () => 'j' }, 'x'.repeat(70000)),
  deep
)

function sameAsEncode (protocol: HubProtocol): (invocationId: string, value: unknown) => boolean {
  return (invocationId, value) => {
    const direct = written(() => protocol.encodeResult!(invocationId, value))
    const general = written(() => protocol.encode({ type: 3, invocationId, hasResult: true, result: value ?? null }))
    return JSON.stringify(direct) === JSON.stringify(general)
  }
}

for (const protocol of [jsonProtocol, messagePackProtocol]) {
  t.test(`${protocol.name}: encodeResult writes what encode writes`, async (t) => {
    t.type(protocol.encodeResult, 'function')
    checkProperty(t, 'generated ids and results', fc.property(id, result, sameAsEncode(protocol)))
  })
}
