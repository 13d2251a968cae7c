// The cross-server selector contract: one suite, run on every backplane (the
// in-process memory bus, real Redis with servers in child processes), as the
// socket.io redis adapter's test-runner does. A cluster is three servers that
// run test/fixtures/contract-hub.ts; how they are built is the caller's business.
import type { Test } from 'tap'
import { HUB_PATH, type AskOutcome, type Selector } from '../fixtures/contract-hub.js'
import type { signalR } from '../helpers/clients.js'
import { buildCellClient, type Cell, type MatrixClientOptions } from '../helpers/matrix.js'
import { receives } from '../helpers/peers.js'
import { rawConnect, invocation } from '../helpers/raw.js'

/** Re-exported for the scale-out tests that import their helpers from here. */
export { receives }

export interface ClusterServer {
  /** The name the server reports in `Who`. */
  readonly name: string
  /** http://127.0.0.1:PORT */
  readonly baseUrl: string
  /** ws://127.0.0.1:PORT */
  readonly wsUrl: string
}

/** Bound on any single wait, so a broken delivery fails quickly instead of hanging until tap's timeout. */
const WAIT_MS = 10_000

/** Rejects if `promise` has not settled within `ms`: a bound on a wait, never a delay. */
export function within<T> (promise: Promise<T>, what: string, ms = WAIT_MS): Promise<T> {
  let timer: NodeJS.Timeout | undefined
  const bound = new Promise<never>((_resolve, reject) => {
    timer = setTimeout(() => { reject(new Error(`timed out after ${ms} ms waiting for ${what}`)) }, ms)
  })
  return Promise.race([promise, bound]).finally(() => { clearTimeout(timer) })
}

export interface Who { connectionId: string, server: string, userId: string | null, transport: string }

export interface Peer {
  readonly name: string
  /** Index of the server this client's connection lives on. */
  readonly server: number
  readonly conn: signalR.HubConnection
  readonly id: string
  readonly cell: Cell
  /** Every `Msg` payload received, in order. */
  readonly got: unknown[]
}

export interface PeerSpec {
  name: string
  server: number
  cell: Cell
  user?: string
  options?: MatrixClientOptions
}

export const WS_JSON: Cell = { transport: 'WebSockets', protocol: 'json', name: 'WebSockets/json' }
export const WS_MSGPACK: Cell = { transport: 'WebSockets', protocol: 'messagepack', name: 'WebSockets/messagepack' }
export const SSE_JSON: Cell = { transport: 'ServerSentEvents', protocol: 'json', name: 'ServerSentEvents/json' }
export const LP_JSON: Cell = { transport: 'LongPolling', protocol: 'json', name: 'LongPolling/json' }
export const LP_MSGPACK: Cell = { transport: 'LongPolling', protocol: 'messagepack', name: 'LongPolling/messagepack' }

export function hubUrl (server: ClusterServer, user?: string): string {
  return `${server.baseUrl}${HUB_PATH}${user === undefined ? '' : `?user=${encodeURIComponent(user)}`}`
}

/**
 * Connects an official client (stopped in teardown) with its handlers in place
 * before start: `Msg` is recorded, `answer` returns `<name>:<arg>`, `fail`
 * throws. Checks that the connection lives where it was asked to.
 */
export async function connectPeer (t: Test, servers: readonly ClusterServer[], spec: PeerSpec): Promise<Peer> {
  const conn = buildCellClient(hubUrl(servers[spec.server]!, spec.user), spec.cell, spec.options)
  const got: unknown[] = []
  conn.on('Msg', (m: unknown) => { got.push(m) })
  conn.on('answer', (arg: unknown) => `${spec.name}:${String(arg)}`)
  conn.on('fail', () => { throw new Error(`${spec.name} refuses`) })
  // Never answers: the server's clientResultTimeout has to end the call.
  conn.on('hang', () => new Promise(() => {}))
  t.teardown(() => conn.stop())
  await within(conn.start(), `${spec.name} to start`)
  const who = await conn.invoke('Who') as Who
  t.equal(who.server, servers[spec.server]!.name, `${spec.name} (${spec.cell.name}) lives on ${who.server}`)
  t.equal(who.transport, spec.cell.transport)
  t.equal(who.userId, spec.user ?? null)
  return { name: spec.name, server: spec.server, conn, id: who.connectionId, cell: spec.cell, got }
}

export async function post<T = unknown> (server: ClusterServer, path: string, body: unknown): Promise<T> {
  const res = await fetch(`${server.baseUrl}${path}`, {
    method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(body)
  })
  if (res.status !== 200) throw new Error(`POST ${path} on ${server.name}: ${res.status} ${await res.text()}`)
  return await res.json() as T
}

let barriers = 0

/**
 * Runs `action` on server `via`, waits for the receivers to get the payload,
 * then broadcasts a barrier from the same server (hubContext all) and waits
 * until every peer has it. On one Redis a server's publications reach each
 * other server in order (one publishing connection, one subscribing
 * connection), and a connection's messages arrive in order, so a stray copy
 * would arrive before the barrier: non-receivers hold exactly [barrier],
 * receivers exactly [payload, barrier].
 */
export async function expectDelivery (
  t: Test, servers: readonly ClusterServer[], peers: readonly Peer[], what: string,
  payload: string, receivers: readonly Peer[], via: number, action: () => Promise<unknown>
): Promise<void> {
  for (const p of peers) p.got.length = 0
  // Receivers first: on a Redis Cluster the payload's channel and the barrier's
  // may live on different shards, and only order per channel is promised.
  const delivered = Promise.all(receivers.map((p) => receives(p, payload)))
  await action()
  await within(delivered, `${what} to reach its receivers`)
  const barrier = `barrier-${++barriers}`
  const all = Promise.all(peers.map((p) => receives(p, barrier)))
  await post(servers[via]!, '/broadcast', { selector: { kind: 'all' }, payload: barrier })
  await within(all, `the barrier after ${what}`)
  for (const p of peers) {
    const wanted = receivers.includes(p) ? [payload, barrier] : [barrier]
    t.same(p.got, wanted, `${what}: ${p.name} (server ${servers[p.server]!.name}) ${receivers.includes(p) ? 'gets one copy' : 'gets nothing'}`)
  }
}

/** A hub-method send from `from`, with the barrier from the server it lives on. */
function sendFrom (
  t: Test, servers: readonly ClusterServer[], peers: readonly Peer[], what: string,
  from: Peer, selector: Selector, receivers: readonly Peer[]
): Promise<void> {
  const payload = `p-${what.replace(/\W+/g, '-')}`
  return expectDelivery(t, servers, peers, `${what} from ${from.name}`, payload, receivers, from.server,
    () => from.conn.invoke('Send', selector, payload))
}

/**
 * Six clients on three servers, every transport and both protocols:
 *   server 0: A WebSockets/json (alice), B LongPolling/json
 *   server 1: C ServerSentEvents/json (bob), D WebSockets/messagepack (alice)
 *   server 2: E LongPolling/messagepack, F WebSockets/json (carol)
 */
async function sixPeers (t: Test, servers: readonly ClusterServer[]): Promise<Peer[]> {
  const specs: PeerSpec[] = [
    { name: 'A', server: 0, cell: WS_JSON, user: 'alice' },
    { name: 'B', server: 0, cell: LP_JSON },
    { name: 'C', server: 1, cell: SSE_JSON, user: 'bob' },
    { name: 'D', server: 1, cell: WS_MSGPACK, user: 'alice' },
    { name: 'E', server: 2, cell: LP_MSGPACK },
    { name: 'F', server: 2, cell: WS_JSON, user: 'carol' }
  ]
  return await Promise.all(specs.map((spec) => connectPeer(t, servers, spec)))
}

export interface ContractOptions {
  /**
   * A request for a connection no server has fails at once (targeted routing,
   * where it reaches no subscriber). False for the single-channel baseline,
   * where it waits for clientResultTimeout.
   */
  failFast?: boolean
}

/** Registers the contract's subtests against a three-server cluster. */
export function selectorContract (t: Test, servers: readonly ClusterServer[], options: ContractOptions = { failFast: true }): void {
  if (servers.length !== 3) throw new Error('the selector contract needs three servers')

  t.test('every selector across servers, each receiver exactly once', async (t) => {
    const peers = await sixPeers(t, servers)
    const [A, B, C, D, E, F] = peers as [Peer, Peer, Peer, Peer, Peer, Peer]

    // red = {A, C, E}, blue = {B, C, F}; every membership but one is set from another server.
    await A.conn.invoke('AddToGroup', C.id, 'red')
    await C.conn.invoke('AddToGroup', A.id, 'red')
    await B.conn.invoke('AddToGroup', E.id, 'red')
    await E.conn.invoke('AddToGroup', B.id, 'blue')
    await F.conn.invoke('AddToGroup', C.id, 'blue')
    await F.conn.invoke('AddToGroup', F.id, 'blue')

    await sendFrom(t, servers, peers, 'all', A, { kind: 'all' }, peers)
    await sendFrom(t, servers, peers, 'all', E, { kind: 'all' }, peers)
    await sendFrom(t, servers, peers, 'allExcept', D, { kind: 'allExcept', ids: [C.id, E.id] }, [A, B, D, F])
    await sendFrom(t, servers, peers, 'others', E, { kind: 'others' }, [A, B, C, D, F])
    await sendFrom(t, servers, peers, 'caller', D, { kind: 'caller' }, [D])
    await sendFrom(t, servers, peers, 'client (other server)', A, { kind: 'client', id: E.id }, [E])
    await sendFrom(t, servers, peers, 'client (same server)', A, { kind: 'client', id: B.id }, [B])
    await sendFrom(t, servers, peers, 'client (unknown id)', C, { kind: 'client', id: 'no-such-connection' }, [])
    await sendFrom(t, servers, peers, 'clients', E, { kind: 'clients', ids: [B.id, D.id, F.id, 'no-such-connection', B.id] }, [B, D, F])
    await sendFrom(t, servers, peers, 'group (non-member sender)', B, { kind: 'group', name: 'red' }, [A, C, E])
    await sendFrom(t, servers, peers, 'group (nobody in it)', B, { kind: 'group', name: 'green' }, [])
    // C is in both groups: one copy, whether C is remote (from F) or local (from D).
    await sendFrom(t, servers, peers, 'groups', F, { kind: 'groups', names: ['red', 'blue'] }, [A, B, C, E, F])
    await sendFrom(t, servers, peers, 'groups', D, { kind: 'groups', names: ['red', 'blue', 'red'] }, [A, B, C, E, F])
    await sendFrom(t, servers, peers, 'groupExcept', F, { kind: 'groupExcept', name: 'red', ids: [A.id] }, [C, E])
    await sendFrom(t, servers, peers, 'othersInGroup (member)', C, { kind: 'othersInGroup', name: 'red' }, [A, E])
    await sendFrom(t, servers, peers, 'othersInGroup (non-member)', D, { kind: 'othersInGroup', name: 'blue' }, [B, C, F])
    await sendFrom(t, servers, peers, 'user on two servers', F, { kind: 'user', id: 'alice' }, [A, D])
    await sendFrom(t, servers, peers, 'user (unknown)', F, { kind: 'user', id: 'nobody' }, [])
    await sendFrom(t, servers, peers, 'users', B, { kind: 'users', ids: ['bob', 'carol', 'alice', 'nobody', 'bob'] }, [A, C, D, F])

    // Removal for connections on other servers.
    await C.conn.invoke('RemoveFromGroup', A.id, 'red')
    await A.conn.invoke('RemoveFromGroup', C.id, 'blue')
    await sendFrom(t, servers, peers, 'group after remote removal', E, { kind: 'group', name: 'red' }, [C, E])
    await sendFrom(t, servers, peers, 'group after remote removal', A, { kind: 'group', name: 'blue' }, [B, F])
    // Removing a membership that is not there, or adding one twice, is no error and changes nothing.
    await A.conn.invoke('RemoveFromGroup', C.id, 'blue')
    await A.conn.invoke('AddToGroup', D.id, 'red')
    await A.conn.invoke('AddToGroup', D.id, 'red')
    await sendFrom(t, servers, peers, 'group after a repeated add', B, { kind: 'group', name: 'red' }, [C, D, E])
  })

  t.test('a burst from every server at once: each message exactly once, in order per sender', async (t) => {
    const peers = await sixPeers(t, servers)
    const senders = [peers[0]!, peers[2]!, peers[4]!] // one per server
    const COUNT = 40
    const expected = senders.flatMap((s) => Array.from({ length: COUNT }, (_, i) => `${s.name}-${i}`))
    const lasts = senders.map((s) => `${s.name}-${COUNT - 1}`)
    const done = Promise.all(peers.map((p) => Promise.all(lasts.map((last) => receives(p, last)))))
    // Fire-and-forget sends: a connection's invocations run in order, so each sender's messages leave in order.
    await Promise.all(senders.map(async (s) => {
      for (let i = 0; i < COUNT; i++) await s.conn.send('Send', { kind: 'all' }, `${s.name}-${i}`)
    }))
    await within(done, 'every burst to arrive everywhere')
    // Anything extra (a duplicate) would be queued before these barriers, one from each server.
    const barrier = Promise.all(peers.map((p) => Promise.all([0, 1, 2].map((via) => receives(p, `burst-barrier-${via}`)))))
    await Promise.all([0, 1, 2].map((via) => post(servers[via]!, '/broadcast', { selector: { kind: 'all' }, payload: `burst-barrier-${via}` })))
    await within(barrier, 'the burst barriers')
    for (const p of peers) {
      const got = p.got.filter((m) => typeof m === 'string' && !m.startsWith('burst-barrier-')) as string[]
      t.same([...got].sort(), [...expected].sort(), `${p.name} (${p.cell.name}) got each of ${expected.length} messages exactly once`)
      for (const s of senders) {
        const own = got.filter((m) => m.startsWith(`${s.name}-`))
        t.same(own, expected.filter((m) => m.startsWith(`${s.name}-`)), `${p.name} got ${s.name}'s messages in order`)
      }
    }
  })

  t.test('client results across servers', async (t) => {
    const peers = await sixPeers(t, servers)
    const [A, B, C, D, E, F] = peers as [Peer, Peer, Peer, Peer, Peer, Peer]
    const ask = async (from: Peer, to: string, method: string, arg: unknown): Promise<AskOutcome> =>
      await from.conn.invoke('Ask', to, method, arg) as AskOutcome

    t.match(await ask(F, C.id, 'answer', 'q1'), { ok: true, value: 'C:q1' }, 'SSE client on another server answers')
    t.match(await ask(A, E.id, 'answer', 42), { ok: true, value: 'E:42' }, 'MessagePack long-polling client on another server answers')
    t.match(await ask(A, B.id, 'answer', 'local'), { ok: true, value: 'B:local' }, 'same server, for comparison')

    const local = await ask(A, B.id, 'fail', null)
    const remote = await ask(C, B.id, 'fail', null)
    t.match(local, { ok: false, error: /B refuses/ }, 'a throwing client handler rejects the server call')
    t.equal(remote.ok, false)
    t.equal(!remote.ok && remote.error, !local.ok && local.error, 'with the same error text across servers as locally')

    t.match(await ask(D, E.id, 'missing', null), { ok: false, error: "Client didn't provide a result." },
      'a client without a handler, across servers')

    // A client that never answers: the call ends after clientResultTimeout (1000 ms), not before.
    const [hangLocal, hangRemote] = await Promise.all([ask(A, B.id, 'hang', null), ask(C, B.id, 'hang', null)])
    t.match(hangLocal, { ok: false, error: "Timed out after 1000 ms waiting for the client's result of 'hang'." }, 'a silent client times out')
    t.ok(hangLocal.ms >= 1000, `not before the timeout (${hangLocal.ms} ms)`)
    t.equal(hangRemote.ok, false, 'a silent client on another server times out too')
    t.equal((hangRemote as { error?: string }).error, (hangLocal as { error?: string }).error, 'with the same error text as on its own server')
    // setTimeout may fire a millisecond early by Date.now()'s rounding.
    t.ok(hangRemote.ms >= 995, `not before the timeout (${hangRemote.ms} ms)`)
    const unknown = await ask(A, 'no-such-connection', 'answer', null)
    if (options.failFast) {
      t.match(unknown, { ok: false, error: "Connection 'no-such-connection' does not exist." }, 'an unknown connection id rejects')
      t.ok(unknown.ms < 1000, `at once, not after the clientResultTimeout (${unknown.ms} ms)`)
      const missing = { id: 'no-such-connection', group: 'g', add: true }
      for (const via of [0, 1, 2]) {
        await t.rejects(post(servers[via]!, '/groups', missing), /Connection 'no-such-connection' does not exist\./,
          `groups.add for an unknown connection rejects at once via ${servers[via]!.name}`)
        await t.rejects(post(servers[via]!, '/groups', { ...missing, add: false }), /Connection 'no-such-connection' does not exist\./,
          `groups.remove too via ${servers[via]!.name}`)
      }
    } else {
      t.match(unknown, { ok: false, error: /no-such-connection|Timed out/ }, 'an unknown connection id rejects')
      t.ok(unknown.ms >= 995, `after the clientResultTimeout (${unknown.ms} ms)`)
    }

    t.match(await post<AskOutcome>(servers[1]!, '/ask', { id: A.id, method: 'answer', arg: 'ctx' }), { ok: true, value: 'A:ctx' },
      'hubContext client(id).invoke from another server')
    t.match(await post<AskOutcome>(servers[0]!, '/ask', { id: F.id, method: 'fail', arg: null }), { ok: false, error: /F refuses/ },
      'hubContext: a client error across servers')

    // Several results in flight at once, across every pair, each routed back to its own caller.
    const pairs = peers.flatMap((from) => peers.filter((to) => to !== from).map((to) => [from, to] as const))
    const outcomes = await Promise.all(pairs.map(([from, to]) => within(ask(from, to.id, 'answer', from.name), `${from.name} asks ${to.name}`)))
    t.same(outcomes.map((o) => o.ok && o.value), pairs.map(([from, to]) => `${to.name}:${from.name}`), 'concurrent results reach their callers')
  })

  t.test('hubContext sends from any server', async (t) => {
    const peers = await sixPeers(t, servers)
    const [A, B, C, D, E, F] = peers as [Peer, Peer, Peer, Peer, Peer, Peer]
    const send = (via: number, selector: Selector, what: string, receivers: Peer[]): Promise<void> => {
      const payload = `h-${what.replace(/\W+/g, '-')}-${via}`
      return expectDelivery(t, servers, peers, `hubContext ${what} via ${servers[via]!.name}`, payload, receivers, via,
        () => post(servers[via]!, '/broadcast', { selector, payload }))
    }
    for (let via = 0; via < 3; via++) await send(via, { kind: 'all' }, 'all', peers)
    // Group changes from outside any hub, for connections on other servers.
    await post(servers[2]!, '/groups', { id: A.id, group: 'news', add: true })
    await post(servers[0]!, '/groups', { id: D.id, group: 'news', add: true })
    await post(servers[1]!, '/groups', { id: E.id, group: 'news', add: true })
    await send(1, { kind: 'group', name: 'news' }, 'group', [A, D, E])
    await post(servers[0]!, '/groups', { id: E.id, group: 'news', add: false })
    await send(2, { kind: 'group', name: 'news' }, 'group after removal', [A, D])
    await send(0, { kind: 'user', id: 'alice' }, 'user', [A, D])
    await send(2, { kind: 'client', id: B.id }, 'client', [B])
    await send(1, { kind: 'allExcept', ids: [A.id, F.id] }, 'allExcept', [B, C, D, E])
    await send(0, { kind: 'users', ids: ['carol', 'bob'] }, 'users', [C, F])
  })

  t.test('with the shared connectionTokenSecret a WebSocket opens on another server than negotiate', async (t) => {
    const peers = await sixPeers(t, servers)
    const res = await fetch(`${servers[0]!.baseUrl}${HUB_PATH}/negotiate?negotiateVersion=1&user=dave`, { method: 'POST' })
    t.equal(res.status, 200)
    const { connectionId, connectionToken } = await res.json() as { connectionId: string, connectionToken: string }

    const raw = await rawConnect(t, `${servers[1]!.wsUrl}${HUB_PATH}?id=${encodeURIComponent(connectionToken)}&user=dave`,
      { handshake: true, ignorePings: true })
    raw.send(invocation('Who', [], 'w'))
    t.match(await within(raw.next(), 'Who'), { type: 3, invocationId: 'w', result: { connectionId, server: servers[1]!.name, userId: 'dave' } },
      'server 1 accepts the token issued by server 0 and keeps the negotiated id')

    // The connection is reachable from the third server, and its sends reach everyone.
    const payload = 'to-raw-from-2'
    await post(servers[2]!, '/broadcast', { selector: { kind: 'client', id: connectionId }, payload })
    let record = await within(raw.next(), 'the message from server 2')
    t.match(record, { type: 1, target: 'Msg', arguments: [payload] }, 'client(id) from the third server reaches it')
    raw.send(invocation('Send', [{ kind: 'user', id: 'dave' }, 'to-dave'], 's'))
    record = await within(raw.next(), 'the user send')
    t.match(record, { type: 1, target: 'Msg', arguments: ['to-dave'] }, 'user(id) found from its own server')
    const everyone = Promise.all(peers.map((p) => receives(p, 'from-raw')))
    raw.send(invocation('Send', [{ kind: 'others' }, 'from-raw'], 'o'))
    await within(everyone, 'the others send from the raw connection')
    t.pass('its others send reaches the clients on all three servers')
  })
}
