// The nats-server dies under light load and comes back on the same port. Two
// apps in this process, so the backplanes' counters can be read directly.
import { Writable } from 'node:stream'
import { connect } from '@nats-io/transport-node'
import t, { type Test } from 'tap'
import { HubChannels } from '../../lib/lifetime/channels.js'
import { natsBackplane } from '../../lib/nats/index.js'
import { contractOptions, mountContract } from '../fixtures/contract-hub.js'
import { startApp } from '../helpers/app.js'
import { startNats } from '../helpers/nats.js'
import { connectPeer, within, WS_JSON } from './contract.js'

const OUTAGE_MS = Number(process.env.OUTAGE_MS ?? 1000)
const TICK_MS = 10
/** Bound on nats.js reconnecting (it retries every 100 ms here). */
const RECOVERY_BOUND_MS = 20_000

async function natsApp (t: Test, url: string, name: string, logs: string[]) {
  const nats = await connect({ servers: url, maxReconnectAttempts: -1, reconnectTimeWait: 100 })
  // Registered before startApp's teardown, so it runs after the app has closed: the connection is ours to close.
  t.teardown(() => nats.close())
  const backplane = natsBackplane({ nats })
  const stream = new Writable({
    write (chunk: Buffer, _encoding, callback) { logs.push(chunk.toString('utf8')); callback() }
  })
  let hub!: ReturnType<typeof mountContract>
  const started = await startApp(t, (app) => { hub = mountContract(app, name) },
    { ...contractOptions, backplane }, { logger: { level: 'warn', stream } })
  const context = started.app.signalr.hubContext(hub)
  return { name, baseUrl: started.baseUrl, wsUrl: started.wsUrl, nats, backplane, clients: context.clients, groups: context.groups }
}

/** A private nats-server, two apps on it, and a WebSocket client on each. */
async function twoServers (t: Test, name1: string, name2: string) {
  const server = await startNats(t)
  const logs: string[] = []
  const s1 = await natsApp(t, server.url, name1, logs)
  const s2 = await natsApp(t, server.url, name2, logs)
  const c1 = await connectPeer(t, [s1, s2], { name: 'c1', server: 0, cell: WS_JSON })
  const c2 = await connectPeer(t, [s1, s2], { name: 'c2', server: 1, cell: WS_JSON })
  return { server, logs, s1, s2, c1, c2 }
}

/** Numbers of the `prefix-N` messages in `got`, in arrival order. */
function numbered (got: unknown[], prefix: string): number[] {
  return got.filter((m): m is string => typeof m === 'string' && m.startsWith(prefix)).map((m) => Number(m.slice(prefix.length)))
}

t.test('nats-server killed under load and restarted on the same port', async (t) => {
  const unhandled: unknown[] = []
  const onUnhandled = (reason: unknown): void => { unhandled.push(reason) }
  process.on('unhandledRejection', onUnhandled)
  t.teardown(() => { process.off('unhandledRejection', onUnhandled) })

  const { server, logs, s1, s2, c1, c2 } = await twoServers(t, 'n1', 'n2')

  // Each server broadcasts every TICK_MS: `remote-N` from server 2 reach c1 only
  // through NATS; `local-N` from server 1 reach c1 directly.
  let remoteSent = 0
  let localSent = 0
  const sendErrors: unknown[] = []
  const onTick = new Set<() => void>()
  const timer = setInterval(() => {
    s2.clients.all.send('Msg', `remote-${remoteSent++}`).catch((err: unknown) => { sendErrors.push(err) })
    s1.clients.all.send('Msg', `local-${localSent++}`).catch((err: unknown) => { sendErrors.push(err) })
    for (const check of [...onTick]) check()
  }, TICK_MS)
  t.teardown(() => { clearInterval(timer) })
  const whenTick = (condition: () => boolean, what: string, bound?: number): Promise<void> => within(new Promise<void>((resolve) => {
    const check = (): void => {
      if (!condition()) return
      onTick.delete(check)
      resolve()
    }
    onTick.add(check)
  }), what, bound)
  const reached = (got: unknown[], prefix: string, n: number): boolean => numbered(got, prefix).some((i) => i >= n)

  await whenTick(() => reached(c1.got, 'remote-', 20) && reached(c2.got, 'local-', 20), 'cross-server delivery before the outage')
  t.same([s1.backplane.stats.dropped, s2.backplane.stats.dropped], [0, 0], 'nothing dropped while NATS is up')

  const remoteAtKill = remoteSent
  const killedAt = Date.now()
  await server.stop()
  await whenTick(() => s1.backplane.stats.dropped > 0 && s2.backplane.stats.dropped > 0, 'both backplanes to count drops')
  const localMark = localSent
  await whenTick(() => reached(c1.got, 'local-', localMark), 'local delivery during the outage')
  t.pass('a client on server 1 still receives server 1\'s broadcasts while NATS is down')
  t.match(await c2.conn.invoke('Who'), { server: 'n2' }, 'server 2 still answers invocations')
  await t.rejects(s1.groups.add(c2.id, 'during-outage'), /no answer within 1000 ms|not connected/,
    'a cross-server group change rejects instead of hanging')
  t.ok(logs.some((line) => line.includes('nats backplane cannot publish')), 'the drops are logged')
  await whenTick(() => Date.now() - killedAt >= OUTAGE_MS, 'the outage to last OUTAGE_MS', OUTAGE_MS + 10_000)

  const remoteAtRestart = remoteSent
  const localAtRestart = localSent
  await server.restart()
  await whenTick(() => reached(c1.got, 'remote-', remoteAtRestart) && reached(c2.got, 'local-', localAtRestart),
    'cross-server delivery after the restart (nats.js reconnects and resubscribes)', RECOVERY_BOUND_MS)
  t.pass('cross-server delivery works again in both directions')

  clearInterval(timer)
  const fin = new Promise<void>((resolve) => { c1.conn.on('Msg', (m: unknown) => { if (m === 'fin') resolve() }) })
  await s2.clients.all.send('Msg', 'fin')
  await within(fin, 'the final message')

  const remote = numbered(c1.got, 'remote-')
  const local = numbered(c1.got, 'local-')
  t.ok(remote.every((n, i) => i === 0 || n > remote[i - 1]!), 'what arrived through NATS arrived once and in order')
  t.same(local, Array.from({ length: localSent }, (_, i) => i), 'every local broadcast reached the local client, in order')
  t.same(sendErrors, [], 'no send rejected')
  t.same(unhandled, [], 'no unhandled rejection')
  const lost = remoteSent - remote.length
  t.ok(lost >= s2.backplane.stats.dropped, `every message server 2 counted as dropped (${s2.backplane.stats.dropped}) is missing at c1 (${lost} missing)`)
  t.ok(s2.backplane.stats.dropped > 0, 'and the outage was counted')
  t.same(await Promise.all([s1.groups.add(c2.id, 'after'), s2.groups.add(c1.id, 'after')]), [undefined, undefined],
    'cross-server requests work again')
  t.comment(`nats outage: ${JSON.stringify({ remoteSent, remoteAtKill, remoteLost: lost, droppedCounted: [s1.backplane.stats.dropped, s2.backplane.stats.dropped] })}`)
})

/** Calls `attempt` every POLL_MS until it returns true (bounded by `within`). */
function retrying (attempt: () => boolean, what: string, bound = RECOVERY_BOUND_MS): Promise<void> {
  return within(new Promise<void>((resolve) => {
    const timer = setInterval(() => {
      if (!attempt()) return
      clearInterval(timer)
      resolve()
    }, 20)
  }), what, bound)
}

t.test('groups across a nats-server restart: joined, left and sent to during the outage', async (t) => {
  const { s1, s2, c1, c2, server } = await twoServers(t, 'g1', 'g2')
  const sendErrors: unknown[] = []
  type Proxy = typeof s1.clients.all
  const send = (proxy: Proxy, payload: string): void => {
    proxy.send('Msg', payload).catch((err: unknown) => { sendErrors.push(err) })
  }
  const arrived = (peer: typeof c1, payload: string): Promise<void> => new Promise((resolve) => {
    peer.conn.on('Msg', (m: unknown) => { if (m === payload) resolve() })
  })

  await s1.groups.add(c1.id, 'left-during-outage')
  await s1.groups.add(c1.id, 'kept')
  await s1.groups.add(c2.id, 'kept')
  const before = [arrived(c1, 'kept-before'), arrived(c2, 'kept-before')]
  await s2.clients.group('kept').send('Msg', 'kept-before')
  await within(Promise.all(before), 'a group send before the outage')
  t.pass('a group with members on both servers gets a send from server 2 before the outage')

  await server.stop()
  // The backplanes learn of the outage from nats.js's status events; a send is dropped from then on.
  await retrying(() => {
    send(s2.clients.group('kept'), 'probe')
    return s2.backplane.stats.dropped > 0
  }, 'server 2 to notice the outage', 10_000)
  const droppedBefore = s2.backplane.stats.dropped
  const localDuring = arrived(c2, 'kept-during')
  await s2.clients.group('kept').send('Msg', 'kept-during')
  t.equal(s2.backplane.stats.dropped, droppedBefore + 1, 'a group send during the outage resolves and is counted as dropped, not queued')
  await within(localDuring, 'the local member to get the send made during the outage')
  t.pass('the local member gets it')

  // Joining during the outage: the member is in the group here at once; the backplane cannot confirm
  // the group's subscription, so the call rejects after clientResultTimeout, and the subscription is made on reconnect.
  await t.rejects(s1.groups.add(c1.id, 'joined-during-outage'), { code: 'SIGNALR_ERR_BACKPLANE_TIMEOUT' },
    'joining a group during the outage rejects with SIGNALR_ERR_BACKPLANE_TIMEOUT')
  const localJoin = arrived(c1, 'joined-local')
  await s1.clients.group('joined-during-outage').send('Msg', 'joined-local')
  await within(localJoin, 'a local group send to the member that joined during the outage')
  await s1.groups.remove(c1.id, 'left-during-outage')
  const c3 = await connectPeer(t, [s1, s2], { name: 'c3', server: 0, cell: WS_JSON })
  t.pass('a client connects to server 1 while NATS is down')

  await server.restart()
  // Each resends until it arrives: messages published before nats.js has reconnected are dropped.
  const resendUntil = (peer: typeof c1, proxy: Proxy, payload: string, what: string): Promise<void> =>
    retrying(() => { send(proxy, payload); return peer.got.includes(payload) }, what)
  await resendUntil(c1, s2.clients.group('kept'), 'kept-after', 'a group send from server 2 to reach c1 after the restart')
  t.pass('group sends flow across servers again')
  await resendUntil(c2, s1.clients.all, 'all-after', 'an all send from server 1 to reach c2 after the restart')
  t.pass('all sends flow across servers again')
  await resendUntil(c1, s2.clients.group('joined-during-outage'), 'joined-after', 'the group joined during the outage to be subscribed')
  t.pass('the group joined during the outage gets sends from server 2 once NATS is back')
  await resendUntil(c3, s2.clients.client(c3.id), 'to-c3', 'the connection made during the outage to be reachable from server 2')
  t.pass('the connection made during the outage is reachable from server 2')

  // Nobody answers a request on the left group's subject: server 1 did not resubscribe to it.
  const channels = new HubChannels('', 'contract')
  t.equal(await s2.backplane.publishCounted(channels.group('left-during-outage'), Buffer.from('probe')), 0,
    'the group left during the outage has no subscriber after the restart')
  t.equal(await s2.backplane.publishCounted(channels.group('kept'), Buffer.from('probe')), 1)
  t.ok(!c1.got.includes('kept-during'), 'the send dropped during the outage was not delivered later either')
  t.same(await Promise.all([s1.groups.add(c2.id, 'after'), s2.groups.add(c1.id, 'after')]), [undefined, undefined],
    'cross-server group changes work again')
  t.same(sendErrors, [], 'no send rejected')
})
