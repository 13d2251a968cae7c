// The error table, README's "Errors" section and the exported types hold the
// same codes (in the spirit of fastify's test/internals/errors.test.js), and
// every class behaves as @fastify/error promises.
import { readFileSync } from 'node:fs'
import t from 'tap'
import { errorCodes, HubError, SerializationError, SignalRError } from '../lib/index.js'
import { ProtocolError } from '../lib/protocol/protocol-error.js'

const CODE = /`(SIGNALR_ERR_[A-Z_]+)`/g
const codes = Object.keys(errorCodes)

function codesIn (text: string): string[] {
  return [...text.matchAll(CODE)].map((m) => m[1]!)
}

/** The code column of the table in README's "### Errors" section. */
function readmeCodes (): string[] {
  const readme = readFileSync(new URL('../README.md', import.meta.url), 'utf8')
  const start = readme.indexOf('\n### Errors\n')
  t.not(start, -1, 'README has an "Errors" section')
  const section = readme.slice(start + 1, readme.indexOf('\n#', start + 2))
  return section.split('\n').filter((line) => line.startsWith('| `SIGNALR_ERR_')).map((line) => codesIn(line)[0]!)
}

t.test('README lists every code once, in the table\'s order, and no other', async (t) => {
  t.same(readmeCodes(), codes)
  const everywhere = new Set(codesIn(readFileSync(new URL('../README.md', import.meta.url), 'utf8')))
  t.same([...everywhere].filter((code) => !codes.includes(code)), [], 'every code README mentions exists')
})

t.test('the type test lists every code once and no other', async (t) => {
  const typeTest = readFileSync(new URL('../types/errors.test-d.ts', import.meta.url), 'utf8')
  const listed = [...typeTest.matchAll(/^ {2}(SIGNALR_ERR_[A-Z_]+): true,?$/gm)].map((m) => m[1]!)
  t.same(listed, codes, 'types/errors.test-d.ts `everyCode` (Record<ErrorCode, true>, so the compiler checks it against the type)')
})

t.test('every class has its code, its name and a formatted message', async (t) => {
  for (const code of codes) {
    const Class = errorCodes[code as keyof typeof errorCodes] as unknown as new (...args: unknown[]) => Error & { code: string, statusCode: number }
    const err = new Class('a', 'b', 'c')
    t.equal(err.code, code, `${code}: code`)
    t.ok(err instanceof Error, `${code}: an Error`)
    t.ok(err instanceof Class, `${code}: instanceof its class`)
    t.equal(err.statusCode, 500, `${code}: statusCode, if it escapes into a Fastify route`)
    t.notMatch(err.message, /%s/, `${code}: every %s filled`)
    t.equal(Object.prototype.toString.call(err), '[object Error]')
    t.match(err.stack, /errors\.test\.ts/, `${code}: the stack starts where it was made`)
  }
})

t.test('the exported classes keep their names and instanceof', async (t) => {
  const hub = new HubError('Room is full')
  t.match(hub, { name: 'HubError', code: 'SIGNALR_ERR_HUB', message: 'Room is full' })
  t.ok(hub instanceof HubError && hub instanceof Error)
  t.notOk(hub instanceof SignalRError, 'a HubError is the application\'s, not the plugin\'s')
  t.equal(new HubError().message, '', 'no message is an empty one, as for Error')
  t.equal(new HubError('50%s done').message, '50%s done', 'the message is not a format string')
  const cause = new Error('inner')
  t.equal(new HubError('outer', { cause }).cause, cause, 'the cause option, as for Error')
  t.equal(new HubError('outer', undefined).message, 'outer', 'an absent options object is not formatted into the message')

  class RoomFull extends HubError {}
  const sub = new RoomFull('full')
  t.ok(sub instanceof HubError, 'a subclass is a HubError')
  t.equal(sub.code, 'SIGNALR_ERR_HUB')

  t.match(new SerializationError('too deep'), { name: 'SerializationError', code: 'SIGNALR_ERR_SERIALIZATION' })
  t.match(new ProtocolError('bad frame'), { name: 'InvalidDataException', code: 'SIGNALR_ERR_PROTOCOL' },
    'named as the .NET type the clients\' details show')

  const option = new errorCodes.SIGNALR_ERR_INVALID_OPTION('register', 'option "x" is wrong')
  t.match(option, { name: 'SignalRError', code: 'SIGNALR_ERR_INVALID_OPTION', message: 'fastify-signalr: register: option "x" is wrong' })
  t.ok(option instanceof SignalRError, 'the plugin\'s own errors are SignalRErrors')
  t.notOk(option instanceof errorCodes.SIGNALR_ERR_INVALID_HUB, 'and instances of their own code only')
  t.equal(`${option}`, 'SignalRError [SIGNALR_ERR_INVALID_OPTION]: fastify-signalr: register: option "x" is wrong')
})

t.test('backplane and emitter factories refuse bad options with one code, naming the option and the value', async (t) => {
  const { redisBackplane } = await import('../lib/redis/index.js')
  const { natsBackplane } = await import('../lib/nats/index.js')
  const { createHubEmitter } = await import('../lib/emitter/index.js')
  const { defineHub, memoryBackplane, MemoryBus } = await import('../lib/index.js')
  const fakeNats = { publish () {}, subscribe () {}, request () {}, status () {} }
  const cases: Array<[string, () => unknown, RegExp]> = [
    ['redis: 5', () => redisBackplane({ redis: 5 } as never), /^fastify-signalr: redisBackplane: option "redis" must be .*; got 5$/],
    ['prefix: 5', () => redisBackplane({ redis: {}, prefix: 5 } as never), /option "prefix" must be a string; got 5$/],
    ['routing: "x"', () => redisBackplane({ redis: {}, routing: 'x' } as never), /option "routing" must be one of .*; got 'x'$/],
    ['nats: {}', () => natsBackplane({ nats: {} } as never), /^fastify-signalr: natsBackplane: option "nats" must be a connection .*; got \{\}$/],
    ['nats prefix: "a.*"', () => natsBackplane({ nats: fakeNats, prefix: 'a.*' } as never), /option "prefix" must be dot-separated .*; got 'a\.\*'$/],
    ['requestTimeout: 0', () => natsBackplane({ nats: fakeNats, requestTimeout: 0 } as never), /option "requestTimeout" must be a positive integer \(ms\); got 0$/],
    ['emitter backplane: 5', () => createHubEmitter({ backplane: 5, hub: defineHub({ name: 'h', methods: {} }) } as never),
      /^fastify-signalr: createHubEmitter: option "backplane" must be a backplane.*; got 5$/],
    ['emitter without a name', () => createHubEmitter({ backplane: memoryBackplane(new MemoryBus()), hub: defineHub({ methods: {} }) }),
      /^fastify-signalr: createHubEmitter: the hub has no name; pass option "name".*; got undefined$/]
  ]
  for (const [name, make, message] of cases) {
    t.throws(make, { name: 'SignalRError', code: 'SIGNALR_ERR_INVALID_OPTION', message }, name)
  }
})

t.test('what a client reads when a handler throws something that is not an Error', async (t) => {
  const { defineHub } = await import('../lib/index.js')
  const { unlistenedApp } = await import('./helpers/app.js')
  const hub = defineHub({
    // eslint-disable-next-line no-throw-literal
    methods: { Fail: { args: [], handler () { throw 'disk full' } } }
  })
  for (const enableDetailedErrors of [false, true]) {
    const app = await unlistenedApp(t, (app) => { app.mapHub('/h', hub) }, { enableDetailedErrors })
    const client = await app.signalr.inject('/h')
    await t.rejects(client.invoke('Fail'), {
      message: "An unexpected error occurred invoking 'Fail' on the server." + (enableDetailedErrors ? ' Error: disk full' : '')
    }, `enableDetailedErrors: ${enableDetailedErrors}: ${enableDetailedErrors ? 'the thrown text, as an Error' : 'the generic text only'}`)
    await client.stop()
  }
})

t.test('an option error shows a long value cut to one line', async (t) => {
  const { natsBackplane } = await import('../lib/nats/index.js')
  const huge = { servers: 'nats://'.repeat(30), note: 'x'.repeat(200) }
  const err = t.throws(() => natsBackplane({ nats: huge } as never), { code: 'SIGNALR_ERR_INVALID_OPTION' }) as unknown as Error
  const shown = err.message.slice(err.message.lastIndexOf('; got ') + '; got '.length)
  t.equal(shown.length, 60, 'at most 60 characters of the value')
  t.ok(shown.startsWith("{ servers: 'nats://") && shown.endsWith('…'), `cut with an ellipsis: ${shown}`)
})
