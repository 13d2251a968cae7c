// The selector contract on NATS: three servers in child processes on a
// private nats-server, plus the subjects as other services see them.
import { connect } from '@nats-io/transport-node'
import { Packr } from 'msgpackr'
import t from 'tap'
import { HubChannels } from '../../lib/lifetime/channels.js'
import { channelToSubject } from '../../lib/nats/index.js'
import { startNats } from '../helpers/nats.js'
import { spawnServers } from '../helpers/servers.js'
import {
  connectPeer, LP_MSGPACK, receives, selectorContract, SSE_JSON, within, WS_JSON, type Peer
} from './contract.js'
import { checkSendAllEnvelope, externalSendAllEnvelope, readPayload, sendWatchedToAll } from './envelopes.js'

// Three server processes start and the whole contract runs: more than tap's 60 s default on a loaded CI machine.
t.setTimeout(120_000)

// The hub's all channel as the lifetime manager names it (prefix '' under NATS), on the default subject prefix.
const BUS_SUBJECT = channelToSubject('signalr', new HubChannels('', 'contract').all)

t.test('three servers in child processes on one real nats-server', async (t) => {
  const nats = await startNats(t)
  const servers = await spawnServers(t, 0, ['n0', 'n1', 'n2'],
    { path: 'test/fixtures/nats-scaleout-server.ts', env: { NATS_PORT: String(nats.port) } })

  selectorContract(t, servers)

  t.test(`the hub's all channel is the subject ${BUS_SUBJECT}: one message per send, encoded for both protocols`, async (t) => {
    const watcher = await connect({ servers: nats.url })
    t.teardown(() => watcher.close())
    const envelopes: unknown[][] = []
    watcher.subscribe(BUS_SUBJECT, { callback: (_err, msg) => { envelopes.push(readPayload(msg.data).envelope) } })
    await watcher.flush()

    await sendWatchedToAll(t, servers)
    // The watcher's subscription is older than both sends, and NATS keeps one publisher's order;
    // the PONG comes after everything the server queued for the watcher before it.
    await watcher.flush()
    const watched = envelopes.filter((e) => e[0] === 1 && Buffer.from(e[2] as Uint8Array).toString('utf8').includes('"watched"'))
    t.equal(watched.length, 1, 'one publication for three receivers on three servers')
    checkSendAllEnvelope(t, watched[0]!, 'watched')
  })

  t.test('a service without a hub publishes on the subject and every client gets it', async (t) => {
    const peers: Peer[] = [
      await connectPeer(t, servers, { name: 'json', server: 0, cell: WS_JSON }),
      await connectPeer(t, servers, { name: 'sse', server: 1, cell: SSE_JSON }),
      await connectPeer(t, servers, { name: 'lp-msgpack', server: 2, cell: LP_MSGPACK })
    ]
    const publisher = await connect({ servers: nats.url })
    t.teardown(() => publisher.close())
    const all = Promise.all(peers.map((p) => receives(p, 'external')))
    // Garbage first: not MessagePack, then a SEND envelope whose target and bodies are nonsense.
    publisher.publish(BUS_SUBJECT, Buffer.from([0xc1, 0xff, 0x00]))
    publisher.publish(BUS_SUBJECT, Buffer.concat([Buffer.alloc(16, 7), new Packr({ useRecords: false }).pack([1, 'not a target', 7, null])]))
    publisher.publish(BUS_SUBJECT, externalSendAllEnvelope('external'))
    await within(all, 'the external message')
    t.pass('JSON, SSE and MessagePack clients on three servers receive it, after two malformed messages')
    t.same(peers.map((p) => p.got), peers.map(() => ['external']), 'and nothing else')
  })
})
