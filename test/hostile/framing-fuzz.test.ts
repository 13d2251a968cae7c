/**
 * Property-based fuzzing of the handshake and the JSON record framing over a
 * real server (fast-check). Each run opens a WebSocket, so it runs a tenth of
 * FUZZ_RUNS (default 300, so 30 runs) with the fixed seed FUZZ_SEED (default
 * in test/helpers/framing-fuzz.ts). By hand, for a longer run:
 *   FUZZ_RUNS=3000 FUZZ_SEED=$RANDOM npx tap test/hostile/framing-fuzz.test.ts
 */
import { Writable } from 'node:stream'
import fc from 'fast-check'
import t, { type Test } from 'tap'
import { z } from 'zod'
import { defineHub } from '../../lib/index.js'
import { startApp } from '../helpers/app.js'
import { bytesWith, chunkSizes, chunksOf, fuzzParameters } from '../helpers/framing-fuzz.js'
import { invocation, rawConnect, RS, type RawClient } from '../helpers/raw.js'

const hub = defineHub({
  methods: { Add: { args: [z.number(), z.number()], handler: (_hub, a, b) => a + b } }
})

const RS_BYTE = 0x1e

async function start (t: Test) {
  const loud: string[] = []
  const stream = new Writable({
    write (chunk: Buffer, _encoding, done) {
      for (const line of chunk.toString('utf8').split('\n')) {
        if (line !== '' && (JSON.parse(line) as { level: number }).level >= 40) loud.push(line)
      }
      done()
    }
  })
  const app = await startApp(t, (app) => { app.mapHub('/hub', hub) }, { maximumReceiveMessageSize: 200 }, { logger: { level: 'debug', stream } })
  return { ...app, loud }
}

/** Either the server still answers an invocation, or it sent a Close record and closed. */
async function aliveOrClosedCleanly (raw: RawClient): Promise<boolean> {
  raw.sendText(RS + JSON.stringify(invocation('Add', [40, 2], 'probe')) + RS)
  for (;;) {
    let record
    try {
      record = await raw.next()
    } catch {
      return false // closed without a Close record
    }
    if (record.type === 3 && record.invocationId === 'probe') return record.result === 42
    if (record.type === 7) return (await raw.closed).code === 1000
  }
}

const runs = (): { seed: number, numRuns: number } => {
  const { seed, numRuns } = fuzzParameters()
  return { seed, numRuns: Math.max(1, Math.floor(numRuns / 10)) }
}

t.test('arbitrary bytes after the handshake, in arbitrary text frames', async (t) => {
  const { wsUrl, loud } = await start(t)
  const result = await fc.check(fc.asyncProperty(bytesWith(RS_BYTE, 400), chunkSizes, async (bytes, sizes) => {
    const raw = await rawConnect(t, `${wsUrl}/hub`, { handshake: true, ignorePings: true })
    for (const chunk of chunksOf(bytes, sizes)) raw.ws.send(chunk, { binary: false })
    const ok = await aliveOrClosedCleanly(raw)
    raw.ws.terminate()
    return ok
  }), runs())
  t.notOk(result.failed, result.failed ? String(fc.defaultReportMessage(result)) : 'the server answers or closes with a Close record')
  t.same(loud, [], 'no warning or error logged')
})

t.test('arbitrary bytes as the handshake, in arbitrary frames', async (t) => {
  const { wsUrl, loud } = await start(t)
  const result = await fc.check(fc.asyncProperty(bytesWith(RS_BYTE, 300), chunkSizes, fc.boolean(), async (bytes, sizes, binary) => {
    const raw = await rawConnect(t, `${wsUrl}/hub`)
    for (const chunk of chunksOf(bytes, sizes)) raw.ws.send(chunk, { binary })
    // Ends a handshake still open, so every run gets its answer.
    raw.ws.send(RS, { binary })
    let answer: string
    try {
      answer = await raw.nextText()
    } catch {
      return false
    }
    raw.ws.terminate()
    return answer === '{}' || (JSON.parse(answer) as { error?: unknown }).error !== undefined
  }), runs())
  t.notOk(result.failed, result.failed ? String(fc.defaultReportMessage(result)) : 'every handshake gets {} or a handshake error')
  t.same(loud, [], 'no warning or error logged')
})
