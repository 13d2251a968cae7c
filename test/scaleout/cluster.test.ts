// The cluster backplane: a node:cluster primary with four workers in a child
// process, no Redis. The selector contract runs on three of them (the fourth
// is in the mesh too), then the shared round-robin port and a worker's death.
import { request } from 'node:http'
import t from 'tap'
import { HUB_PATH } from '../fixtures/contract-hub.js'
import { spawnCluster } from '../helpers/cluster.js'
import { connect } from '../helpers/clients.js'
import { invocation, rawConnect } from '../helpers/raw.js'
import { connectPeer, post, receives, selectorContract, within, WS_JSON, type Who } from './contract.js'

// Five processes start (the primary and four workers, each compiling with tsx) and
// the whole contract runs: more than tap's 60 s default on a loaded CI machine.
t.setTimeout(180_000)

/** Negotiate on a new TCP connection (no keep-alive), so node:cluster picks the next worker for it. */
function negotiate (baseUrl: string, user: string): Promise<{ servedBy: string, connectionId: string, connectionToken: string }> {
  return new Promise((resolve, reject) => {
    const req = request(`${baseUrl}${HUB_PATH}/negotiate?negotiateVersion=1&user=${user}`, { method: 'POST', agent: false }, (res) => {
      let body = ''
      res.setEncoding('utf8').on('data', (chunk: string) => { body += chunk }).on('end', () => {
        if (res.statusCode !== 200) return reject(new Error(`negotiate: ${res.statusCode} ${body}`))
        resolve({ servedBy: String(res.headers['x-served-by']), ...JSON.parse(body) as { connectionId: string, connectionToken: string } })
      })
    })
    req.once('error', reject)
    req.end()
  })
}

t.test('a node:cluster primary with four workers on the cluster backplane', async (t) => {
  const app = await spawnCluster(t, 4)
  t.same(app.workers.map((w) => w.name), ['w0', 'w1', 'w2', 'w3'])

  selectorContract(t, app.workers.slice(0, 3))

  t.test('no sticky sessions: negotiate answered by one worker, the WebSocket accepted by another on the shared port', async (t) => {
    // Round-robin hands each new TCP connection to the next worker; try until the two differ (bounded).
    for (let attempt = 0; attempt < 20; attempt++) {
      const { servedBy, connectionId, connectionToken } = await negotiate(app.shared.baseUrl, 'erin')
      const raw = await rawConnect(t, `${app.shared.wsUrl}${HUB_PATH}?id=${encodeURIComponent(connectionToken)}&user=erin`,
        { handshake: true, ignorePings: true })
      raw.send(invocation('Who', [], 'w'))
      const who = (await within(raw.next(), 'Who')).result as Who
      if (who.server === servedBy) {
        raw.ws.close()
        continue
      }
      t.not(who.server, servedBy, `negotiate on ${servedBy}, WebSocket on ${who.server}`)
      t.equal(who.connectionId, connectionId, 'the connection keeps the id negotiate gave it')
      t.equal(who.userId, 'erin')
      // Reachable through the backplane from a third worker.
      const third = app.workers.find((w) => w.name !== servedBy && w.name !== who.server)!
      await post(third, '/broadcast', { selector: { kind: 'user', id: 'erin' }, payload: 'to-erin' })
      t.match(await within(raw.next(), 'the message from a third worker'), { type: 1, target: 'Msg', arguments: ['to-erin'] },
        `user(id) sent from ${third.name} reaches it`)
      return
    }
    t.fail('20 negotiate/WebSocket pairs all landed on one worker: is the shared port round-robin?')
  })

  t.test('official clients through the shared port spread over the workers and all reach each other', async (t) => {
    const clients = await Promise.all(Array.from({ length: 8 }, () => connect(t, `${app.shared.baseUrl}${HUB_PATH}`)))
    const servers = new Set(await Promise.all(clients.map(async (c) => (await c.invoke('Who') as Who).server)))
    t.ok(servers.size >= 2, `8 connections landed on ${servers.size} workers (${[...servers].join(', ')})`)
    const got = clients.map((c) => new Promise<void>((resolve) => { c.on('Msg', (m: unknown) => { if (m === 'to-all') resolve() }) }))
    await clients[0]!.invoke('Send', { kind: 'all' }, 'to-all')
    await within(Promise.all(got), 'the message on every client')
    t.pass('one send reaches all 8, on every worker')
  })

  t.test('a worker dies: the others keep talking, no error anywhere', async (t) => {
    const [w0, w1, w2, w3] = app.workers as [typeof app.workers[0], typeof app.workers[0], typeof app.workers[0], typeof app.workers[0]]
    const onW1 = await connectPeer(t, app.workers, { name: 'p1', server: 1, cell: WS_JSON })
    const onW2 = await connectPeer(t, app.workers, { name: 'p2', server: 2, cell: WS_JSON, user: 'zed' })
    const doomed = await connectPeer(t, app.workers, { name: 'p3', server: 3, cell: WS_JSON })
    await post(w0, '/groups', { id: onW2.id, group: 'after-death', add: true })
    await post(w0, '/groups', { id: doomed.id, group: 'after-death', add: true })
    process.kill(w3.pid, 'SIGKILL')
    await within(app.exited('w3'), 'the primary to see w3 exit')
    const both = Promise.all([receives(onW1, 'after'), receives(onW2, 'after')])
    await post(w0, '/broadcast', { selector: { kind: 'all' }, payload: 'after' })
    await within(both, 'the broadcast after w3 died')
    t.pass('w0 reaches w1 and w2 after w3 died')
    const grouped = receives(onW2, 'group-after')
    await post(w1, '/broadcast', { selector: { kind: 'group', name: 'after-death' }, payload: 'group-after' })
    await within(grouped, 'the group message')
    t.pass('a group with a member on the dead worker still reaches its live member')
    t.match(await post(w2, '/ask', { id: onW1.id, method: 'answer', arg: 'still' }), { ok: true, value: 'p1:still' },
      'client results still cross workers')
    t.equal(doomed.got.includes('after'), false, 'nothing reached the dead worker\'s client')
  })
})
