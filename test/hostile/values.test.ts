// Hostile values: deep nesting, cycles, huge numbers, prototype keys and
// msgpackr's own types, sent by clients or made by handlers. One server (a
// child process, see harness.ts) takes every attack; after each, it must be
// alive without any uncaught error, the attacked connection must have a clear
// error, and two bystanders (an official JSON and an official MessagePack
// client) must still receive a broadcast.
import { Packr } from 'msgpackr'
import t, { type Test } from 'tap'
import { connectCell, type Cell } from '../helpers/matrix.js'
import { signalR } from '../helpers/clients.js'
import { rawConnect, type RawClient } from '../helpers/raw.js'
import { startHostileServer, type HostileServer } from './harness.js'
import { nested } from './fixtures/values-hub.js'
import { rawMessagePack } from './raw-messagepack.js'

const FIXTURE = 'test/hostile/fixtures/values-hub.ts'
const JSON_CELL: Cell = { transport: 'WebSockets', protocol: 'json', name: 'WebSockets/json' }
const MSGPACK_CELL: Cell = { transport: 'WebSockets', protocol: 'messagepack', name: 'WebSockets/messagepack' }
const TOO_DEEP_64 = 'The value nests deeper than the maximum depth of 64 (maximumMessageDepth).'
const OUT_TOO_DEEP = 'The value nests deeper than 512 levels (or is cyclic).'

/** A nested array as JSON text, built without JSON.stringify (which cannot write it). */
function nestedJson (depth: number): string {
  return '['.repeat(depth) + '1' + ']'.repeat(depth)
}

/** Writes MessagePack the way msgpackr can: with its own extensions. */
const extensionPackr = new Packr({ moreTypes: true, structuredClone: true, useRecords: false })
const plainPackr = new Packr({ useRecords: false, variableMapSize: true })

/** A nested array as MessagePack bytes: fixarray-of-one headers around 1. */
function nestedMessagePack (depth: number): Buffer {
  return Buffer.concat([Buffer.alloc(depth, 0x91), Buffer.from([0x01])])
}

/** Invocation [1, {}, id, target, [arg]] with the argument given as raw MessagePack bytes. */
function invocationWithRawArg (id: string, target: string, arg: Buffer): Buffer {
  const head = plainPackr.pack([1, {}, id, target])
  // Replace the fixarray-of-4 header with one of 5, then append the argument list.
  head[0] = 0x95
  return Buffer.concat([head, Buffer.from([0x91]), arg])
}

async function nextCompletion (raw: RawClient, id: string): Promise<Record<string, unknown>> {
  for (;;) {
    const message = await raw.next()
    if (message.type === 3 && message.invocationId === id) return message
  }
}

let server: HostileServer
const bystanders: Array<{ name: string, received: unknown[] }> = []

t.before(async () => {
  // The whole file shares the server; its teardown belongs to the top-level test.
  server = await startHostileServer(t, FIXTURE)
  for (const cell of [JSON_CELL, MSGPACK_CELL]) {
    const connection = await connectCell(t, `${server.baseUrl}/values`, cell)
    const received: unknown[] = []
    connection.on('Relayed', (value: unknown) => { received.push(value) })
    bystanders.push({ name: cell.name, received })
  }
})

/** Ends every attack: the server survived and the bystanders still get broadcasts. */
async function afterAttack (t: Test, marker: string): Promise<void> {
  if (!await server.assertSurvived(t)) return
  const sender = await connectCell(t, `${server.baseUrl}/values`, JSON_CELL)
  const arrived = bystanders.map(({ received }) => new Promise<void>((resolve) => {
    const check = (): void => { if (received.includes(marker)) resolve(); else setImmediate(check) }
    check()
  }))
  await sender.invoke('Relay', marker)
  await Promise.all(arrived)
  for (const { name } of bystanders) t.pass(`${name} bystander still receives broadcasts`)
  await sender.stop()
}

/** One attack: whatever the body asserts or throws, the server's survival is checked after it. */
function attack (name: string, body: (t: Test) => Promise<void>): void {
  t.test(name, async (t) => {
    try {
      await body(t)
    } finally {
      await afterAttack(t, `after: ${name}`)
    }
  })
}

attack('deep arguments are refused before the handler, in both protocols', async (t) => {
  const raw = await rawConnect(t, `${server.wsUrl}/values`, { handshake: true, ignorePings: true })
  raw.sendText(`{"type":1,"invocationId":"1","target":"Echo","arguments":[${nestedJson(6000)}]}\u001e`)
  t.equal((await nextCompletion(raw, '1')).error,
    `Failed to invoke 'Echo' due to an error on the server. InvalidDataException: Error binding arguments. Argument 0: ${TOO_DEEP_64}`,
    'JSON: a 6000-deep argument gets a completion error naming the limit')
  raw.sendText(`{"type":1,"invocationId":"2","target":"Echo","arguments":[${nestedJson(65)}]}\u001e`)
  t.match((await nextCompletion(raw, '2')).error, TOO_DEEP_64, 'JSON: 65 levels are one too many')
  raw.sendText(`{"type":1,"invocationId":"3","target":"Echo","arguments":[${nestedJson(64)}]}\u001e`)
  t.same((await nextCompletion(raw, '3')).result, nested(64), 'JSON: 64 levels are echoed: the limit itself is allowed')

  const shallow = await rawConnect(t, `${server.wsUrl}/shallow`, { handshake: true, ignorePings: true })
  shallow.sendText(`{"type":1,"invocationId":"1","target":"Echo","arguments":[${nestedJson(4)}]}\u001e`)
  t.match((await nextCompletion(shallow, '1')).error, 'maximum depth of 3', 'a per-hub maximumMessageDepth applies')

  const mp = await rawMessagePack(t, `${server.wsUrl}/values`)
  mp.send(invocationWithRawArg('1', 'Echo', nestedMessagePack(100)))
  const refused = await mp.next()
  t.same(refused.slice(0, 4), [3, {}, '1', 1], 'MessagePack: a 100-deep argument gets a completion error')
  t.match(refused[4], TOO_DEEP_64, 'naming the limit')
  mp.send(invocationWithRawArg('2', 'Echo', nestedMessagePack(64)))
  t.same((await mp.next()).slice(2), ['2', 3, nested(64)], 'MessagePack: 64 levels are echoed')

  // Far past any limit the message is refused as a whole: MessagePack is read recursively.
  const detailed = await rawMessagePack(t, `${server.wsUrl}/detailed`)
  detailed.send(invocationWithRawArg('1', 'Echo', nestedMessagePack(6000)))
  const close = await detailed.next()
  t.equal(close[0], 7, 'MessagePack: a 6000-deep message closes that connection with a Close message')
  t.match(close[1], 'nested deeper than 514 levels', 'which names the reason (detailed errors)')
  await detailed.closed
})

attack('deep values in client results and upload streams are refused', async (t) => {
  const raw = await rawConnect(t, `${server.wsUrl}/values`, { handshake: true, ignorePings: true })
  raw.sendText('{"type":1,"invocationId":"1","target":"AskCaller","arguments":[]}\u001e')
  const ask = await raw.next()
  t.equal(ask.target, 'Give', 'the server asks the client for a result')
  raw.sendText(`{"type":3,"invocationId":${JSON.stringify(ask.invocationId)},"result":${nestedJson(6000)}}\u001e`)
  t.equal((await nextCompletion(raw, '1')).error,
    `An unexpected error occurred invoking 'AskCaller' on the server. HubException: The client's result is invalid: ${TOO_DEEP_64}`,
    'a 6000-deep client result never reaches the hub method: its invoke() rejects')

  raw.sendText('{"type":1,"invocationId":"2","target":"Upload","arguments":[],"streamIds":["u1"]}\u001e')
  raw.sendText(`{"type":2,"invocationId":"u1","item":${nestedJson(6000)}}\u001e{"type":3,"invocationId":"u1"}\u001e`)
  t.match((await nextCompletion(raw, '2')).error, `Stream item is invalid: ${TOO_DEEP_64}`,
    'a deep upload stream item fails the stream, and the hub method with it')

  const mp = await rawMessagePack(t, `${server.wsUrl}/values`)
  mp.send(plainPackr.pack([1, {}, '1', 'Upload', [], ['u1']]))
  mp.send(Buffer.concat([Buffer.from([0x94, 0x02, 0x80, 0xa2, 0x75, 0x31]), nestedMessagePack(100)]))
  mp.send(plainPackr.pack([3, {}, 'u1', 2]))
  const upload = await mp.next()
  t.same(upload.slice(0, 4), [3, {}, '1', 1], 'MessagePack: a 100-deep upload stream item fails the invocation')
  t.match(upload[4], `Stream item is invalid: ${TOO_DEEP_64}`, 'naming the limit')

  // The official clients, answering with values deeper than the limit.
  for (const cell of [JSON_CELL, MSGPACK_CELL]) {
    const client = await connectCell(t, `${server.baseUrl}/values`, cell)
    client.on('Give', () => nested(70))
    await t.rejects(client.invoke('AskCaller'), { message: /The client's result is invalid: The value nests deeper than the maximum depth of 64/ },
      `${cell.name}: a 70-deep client result is refused`)
    t.equal(await client.invoke('Add', 1, 2), 3, `${cell.name}: the connection goes on`)
  }
})

attack('values the server cannot write fail only their invocation or send', async (t) => {
  for (const cell of [JSON_CELL, MSGPACK_CELL]) {
    const client = await connectCell(t, `${server.baseUrl}/values`, cell)
    await t.rejects(client.invoke('MakeDeep', 600), { message: `An unexpected error occurred invoking 'MakeDeep' on the server. InvalidDataException: ${OUT_TOO_DEEP}` },
      `${cell.name}: a result too deep to write is a completion error`)
    await t.rejects(client.invoke('MakeCyclic'), { message: /InvalidDataException: The value nests deeper than 512 levels \(or is cyclic\)/ },
      `${cell.name}: a cyclic result is a completion error`)
    await t.rejects(client.invoke('MakeBigInt', true), { message: /The BigInt 1180591620717411303424 is outside the range/ },
      `${cell.name}: a BigInt no number can hold is a completion error`)
    t.equal(await client.invoke('MakeBigInt', false), 2 ** 40, `${cell.name}: a safe BigInt is written as a number`)
    t.equal(await client.invoke('BroadcastDeep', 600), `refused: ${OUT_TOO_DEEP}`, `${cell.name}: clients.all.send() rejects`)
    t.equal(await client.invoke('SendBack', { fine: true }), 'sent', `${cell.name}: the caller can still be sent to`)
    t.equal(await client.invoke('AskWithDeepArgument', 600), `refused: ${OUT_TOO_DEEP}`,
      `${cell.name}: a client result whose arguments cannot be written rejects at once`)
    const items: unknown[] = []
    const error = await new Promise<Error>((resolve) => {
      client.stream('StreamDeep', 600).subscribe({ next: (item) => { items.push(item) }, complete: () => { resolve(new Error('completed')) }, error: resolve })
    })
    t.same(items, ['first'], `${cell.name}: the stream items before the bad one arrive`)
    t.equal(error.message, `An error occurred on the server while streaming results. InvalidDataException: ${OUT_TOO_DEEP}`,
      `${cell.name}: a stream item too deep to write ends the stream with an error`)
    t.equal(await client.invoke('Add', 2, 3), 5, `${cell.name}: the connection still answers (its inbox is not stuck)`)
  }
})

attack('prototype keys never reach a handler', async (t) => {
  const clean = { polluted: null, keys: ['name'] }
  const raw = await rawConnect(t, `${server.wsUrl}/values`, { handshake: true, ignorePings: true })
  raw.sendText('{"type":1,"invocationId":"1","target":"Merge","arguments":[{"\\u005f\\u005fproto\\u005f\\u005f":{"polluted":"yes"},"name":"x"}]}\u001e')
  t.same((await nextCompletion(raw, '1')).result, clean, 'JSON: an escaped __proto__ key is dropped')
  raw.sendText('{"type":1,"invocationId":"2","target":"Merge","arguments":[{"constructo\\u0072":{"prototype":{"polluted":"yes"}},"name":"x"}]}\u001e')
  t.same((await nextCompletion(raw, '2')).result, clean, 'JSON: an escaped constructor.prototype key is dropped')

  const official = await connectCell(t, `${server.baseUrl}/values`, MSGPACK_CELL)
  const withProto = JSON.parse('{"__proto__":{"polluted":"yes"},"name":"x"}') as Record<string, unknown>
  t.same(await official.invoke('Merge', withProto), clean, 'MessagePack (official client): a __proto__ key is dropped')
  t.same(await official.invoke('Merge', { constructor: { prototype: { polluted: 'yes' } }, name: 'x' }), clean,
    'MessagePack (official client): a constructor.prototype key is dropped')
  t.same(await official.invoke('Merge', { constructor: 'Ford', name: 'x' }), { polluted: null, keys: ['constructor', 'name'] },
    'a harmless constructor key stays')
})

attack('only the types SignalR MessagePack defines reach a handler', async (t) => {
  const official = await connectCell(t, `${server.baseUrl}/values`, MSGPACK_CELL)
  const date = new Date('2024-05-06T07:08:09.010Z')
  t.same(await official.invoke('Describe', [date, new Uint8Array([1, 2]), 1.5, 'x', true, null, { a: 1 }]),
    ['Date', 'Uint8Array', 'number', 'string', 'boolean', 'object', { a: 'number' }], 'timestamps, bin and the standard types pass')

  const cyclic: Record<string, unknown> = { name: 'loop' }
  cyclic.self = cyclic
  const attacks: Array<[string, Buffer]> = [
    ['a Set', extensionPackr.pack(new Set([1]))],
    ['a RegExp', extensionPackr.pack(/x/g)],
    ['an Error', extensionPackr.pack(new Error('x'))],
    ['a Float64Array', extensionPackr.pack(new Float64Array([1]))],
    ['a structured-clone cycle', extensionPackr.pack(cyclic)],
    ['the never-used byte 0xc1', Buffer.from([0xc1])]
  ]
  for (const [name, arg] of attacks) {
    const raw = await rawMessagePack(t, `${server.wsUrl}/detailed`)
    raw.send(invocationWithRawArg('1', 'Describe', arg))
    const close = await raw.next()
    t.same(close[0], 7, `${name}: the connection is closed with a Close message`)
    t.match(close[1], /Error reading MessagePack data: (type 0x[0-9a-f]+ is not allowed|extension types other than the timestamp are not allowed)/,
      `${name}: it names the reason`)
    await raw.closed
  }
})

attack('large integers from the official MessagePack client are numbers', async (t) => {
  const json = await connectCell(t, `${server.baseUrl}/values`, JSON_CELL)
  const msgpack = await connectCell(t, `${server.baseUrl}/values`, MSGPACK_CELL)
  t.equal(await msgpack.invoke('Add', 2 ** 40, 1), 2 ** 40 + 1, 'Add(2 ** 40, 1) over MessagePack')
  t.equal(await msgpack.invoke('Add', -(2 ** 40), -1), -(2 ** 40) - 1, 'negative int64 too')
  t.equal(await msgpack.invoke('Echo', Number.MAX_SAFE_INTEGER), Number.MAX_SAFE_INTEGER, '2^53 - 1 is exact')
  const ts = Date.now()
  const atJson = new Promise<unknown>((resolve) => { json.on('Relayed', resolve) })
  const atMsgpack = new Promise<unknown>((resolve) => { msgpack.on('Relayed', resolve) })
  await msgpack.invoke('Relay', { ts })
  t.same(await atJson, { ts }, 'a { ts: Date.now() } broadcast reaches the JSON client')
  t.same(await atMsgpack, { ts }, 'and the MessagePack client')
  t.equal(signalR.HubConnectionState.Connected, msgpack.state, 'the sender is still connected')
})
