import t from 'tap'
import { z } from 'zod'
import { defineHub, MemoryBus, memoryBackplane } from '../../lib/index.js'
import { startApp } from '../helpers/app.js'
import { connect, nextMessage } from '../helpers/clients.js'
import { contractOptions, mountContract } from '../fixtures/contract-hub.js'
import { selectorContract, type ClusterServer } from './contract.js'

const hub = defineHub({
  name: 'scaled',
  methods: {
    WhoAmI: { args: [], handler: (h) => h.connectionId },
    ToAll: { args: [z.string()], handler: (h, s) => h.clients.all.send('msg', s) },
    ToGroup: { args: [z.string(), z.string()], handler: (h, g, s) => h.clients.group(g).send('msg', s) },
    ToGroups: { args: [z.array(z.string()), z.string()], handler: (h, g, s) => h.clients.groups(g).send('msg', s) },
    ToClient: { args: [z.string(), z.string()], handler: (h, id, s) => h.clients.client(id).send('msg', s) },
    AddTo: { args: [z.string(), z.string()], handler: (h, id, g) => h.groups.add(id, g) },
    RemoveFrom: { args: [z.string(), z.string()], handler: (h, id, g) => h.groups.remove(id, g) },
    Ask: { args: [z.string()], handler: (h, id) => h.clients.client(id).invoke('answer') }
  }
})

t.test('two servers on one memory bus', async (t) => {
  const bus = new MemoryBus()
  const a = await startApp(t, (app) => { app.mapHub('/hub', hub) }, { backplane: memoryBackplane(bus), clientResultTimeout: 500, enableDetailedErrors: true })
  const b = await startApp(t, (app) => { app.mapHub('/hub', hub) }, { backplane: memoryBackplane(bus), clientResultTimeout: 500, enableDetailedErrors: true })
  const ca = await connect(t, `${a.baseUrl}/hub`)
  const cb = await connect(t, `${b.baseUrl}/hub`)
  const idB = await cb.invoke('WhoAmI') as string

  let received = [nextMessage(ca, 'msg'), nextMessage(cb, 'msg')]
  await ca.invoke('ToAll', 'one')
  t.same(await Promise.all(received), [['one'], ['one']], 'all reaches both servers')

  // A group change for a connection that lives on the other server.
  await ca.invoke('AddTo', idB, 'g')
  received = [nextMessage(cb, 'msg')]
  await ca.invoke('ToGroup', 'g', 'two')
  t.same(await received[0], ['two'], 'group member on the other server')

  received = [nextMessage(cb, 'msg')]
  await ca.invoke('ToClient', idB, 'three')
  t.same(await received[0], ['three'], 'client(id) on the other server')

  cb.on('answer', () => 'from b')
  t.equal(await ca.invoke('Ask', idB), 'from b', 'client result across servers')

  // Both groups on the same connection: one copy. Everything cb receives from
  // here on is recorded by one handler; a barrier message ends each phase.
  await ca.invoke('AddTo', idB, 'h')
  const copies: unknown[] = []
  let waiter: { value: string, resolve: () => void } | null = null
  cb.on('msg', (s: string) => {
    copies.push(s)
    if (waiter !== null && waiter.value === s) waiter.resolve()
  })
  const until = (value: string): Promise<void> => new Promise((resolve) => { waiter = { value, resolve } })
  await ca.invoke('ToGroups', ['g', 'h'], 'once')
  let barrier = until('barrier')
  await ca.invoke('ToClient', idB, 'barrier')
  await barrier
  t.same(copies, ['once', 'barrier'], 'one copy for a connection in two named groups')

  await ca.invoke('RemoveFrom', idB, 'g')
  await ca.invoke('RemoveFrom', idB, 'h')
  copies.length = 0
  await ca.invoke('ToGroup', 'g', 'gone')
  barrier = until('barrier2')
  await ca.invoke('ToClient', idB, 'barrier2')
  await barrier
  t.same(copies, ['barrier2'], 'removed from the group across servers')
  await t.rejects(ca.invoke('Ask', 'nobody'), /does not exist/)
})

async function negotiateOn (baseUrl: string): Promise<{ connectionId: string, connectionToken: string }> {
  const res = await fetch(`${baseUrl}/hub/negotiate?negotiateVersion=1`, { method: 'POST' })
  return await res.json() as { connectionId: string, connectionToken: string }
}

async function openWebSocket (url: string): Promise<{ status: number, socket?: import('ws').WebSocket }> {
  const { default: WebSocket } = await import('ws')
  const socket = new WebSocket(url)
  return await new Promise((resolve) => {
    socket.once('open', () => { resolve({ status: 101, socket }) })
    socket.once('unexpected-response', (_req, res) => { resolve({ status: res.statusCode ?? 0 }) })
  })
}

t.test('with a shared connectionTokenSecret a WebSocket may open on any server', async (t) => {
  const bus = new MemoryBus()
  const secret = 'a shared secret of enough length'
  const a = await startApp(t, (app) => { app.mapHub('/hub', hub) }, { backplane: memoryBackplane(bus), connectionTokenSecret: secret })
  const b = await startApp(t, (app) => { app.mapHub('/hub', hub) }, { backplane: memoryBackplane(bus), connectionTokenSecret: secret })
  const { connectionId, connectionToken } = await negotiateOn(a.baseUrl)
  t.not(connectionToken, connectionId)
  t.notOk(connectionToken.startsWith(connectionId) && connectionToken.length === connectionId.length)

  t.equal((await openWebSocket(`${b.wsUrl}/hub?id=${connectionId}`)).status, 404, 'the public id is no key')
  const forged = connectionToken.slice(0, -2) + (connectionToken.endsWith('AA') ? 'BB' : 'AA')
  t.equal((await openWebSocket(`${b.wsUrl}/hub?id=${forged}`)).status, 404, 'a tampered token is refused')

  const { status, socket } = await openWebSocket(`${b.wsUrl}/hub?id=${connectionToken}`)
  t.equal(status, 101, 'server B accepts the token server A issued')
  t.teardown(() => socket!.terminate())
  const records: string[] = []
  const next = (): Promise<string> => new Promise((resolve) => {
    const take = (): void => { if (records.length > 0) resolve(records.shift()!); else socket!.once('message', () => { take() }) }
    take()
  })
  socket!.on('message', (data) => { for (const r of data.toString().split('\u001e')) if (r !== '') records.push(r) })
  socket!.send('{"protocol":"json","version":1}\u001e')
  t.equal(await next(), '{}')
  socket!.send('{"type":1,"invocationId":"1","target":"WhoAmI","arguments":[]}\u001e')
  let record = JSON.parse(await next()) as { type: number, result?: unknown }
  while (record.type !== 3) record = JSON.parse(await next()) as { type: number, result?: unknown }
  t.equal(record.result, connectionId, 'the connection keeps the id negotiated on server A')
})

t.test('without a shared secret a token from another server is unknown', async (t) => {
  const a = await startApp(t, (app) => { app.mapHub('/hub', hub) })
  const b = await startApp(t, (app) => { app.mapHub('/hub', hub) })
  const { connectionToken } = await negotiateOn(a.baseUrl)
  t.equal((await openWebSocket(`${b.wsUrl}/hub?id=${connectionToken}`)).status, 404)
})

t.test('the selector contract on three servers sharing one memory bus', async (t) => {
  const bus = new MemoryBus()
  const servers: ClusterServer[] = []
  for (const name of ['m0', 'm1', 'm2']) {
    const { baseUrl, wsUrl } = await startApp(t, (app) => { mountContract(app, name) }, { ...contractOptions, backplane: memoryBackplane(bus) })
    servers.push({ name, baseUrl, wsUrl })
  }
  selectorContract(t, servers)
})

t.test('the selector contract with the single-channel baseline (routing: hub)', async (t) => {
  const bus = new MemoryBus()
  const servers: ClusterServer[] = []
  for (const name of ['h0', 'h1', 'h2']) {
    const { baseUrl, wsUrl } = await startApp(t, (app) => { mountContract(app, name) },
      { ...contractOptions, backplane: memoryBackplane(bus, { routing: 'hub' }) })
    servers.push({ name, baseUrl, wsUrl })
  }
  selectorContract(t, servers, { failFast: false })
})
