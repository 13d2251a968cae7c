import { MessagePackHubProtocol } from '@microsoft/signalr-protocol-msgpack'
import { Redis } from 'ioredis'
import { Packr, Unpackr } from 'msgpackr'
import t from 'tap'
import { startRedis } from '../helpers/redis.js'
import { spawnServers } from '../helpers/servers.js'
import { signalR } from '../helpers/clients.js'
import {
  connectPeer, LP_MSGPACK, receives, selectorContract, SSE_JSON, within, WS_JSON, WS_MSGPACK, type Peer
} from './contract.js'

t.test('three servers in child processes on one real Redis', async (t) => {
  const redis = await startRedis(t)
  const servers = await spawnServers(t, redis.port, ['r0', 'r1', 'r2'])

  selectorContract(t, servers)

  t.test('the bus as other services see it: one envelope per send, encoded for both protocols', async (t) => {
    const watcher = new Redis({ port: redis.port, host: '127.0.0.1' })
    t.teardown(() => { watcher.disconnect() })
    const envelopes: unknown[][] = []
    const unpackr = new Unpackr({ useRecords: false, mapsAsObjects: true })
    watcher.on('messageBuffer', (channel: Buffer, message: Buffer) => {
      // A 16-byte origin header, then the MessagePack envelope.
      if (channel.toString() === 'signalr:contract:all') envelopes.push([message.subarray(0, 16), ...unpackr.unpack(message.subarray(16)) as unknown[]])
    })
    await watcher.subscribe('signalr:contract:all')

    const peers: Peer[] = [
      await connectPeer(t, servers, { name: 'json', server: 0, cell: WS_JSON }),
      await connectPeer(t, servers, { name: 'msgpack', server: 1, cell: WS_MSGPACK }),
      await connectPeer(t, servers, { name: 'lp-msgpack', server: 2, cell: LP_MSGPACK })
    ]
    const all = Promise.all(peers.map((p) => receives(p, 'watched')))
    await peers[0]!.conn.invoke('Send', { kind: 'all' }, 'watched')
    await within(all, 'the watched message')
    // Our own subscriber has it too once a later publication from the same server has arrived.
    const marker = Promise.all(peers.map((p) => receives(p, 'marker')))
    await peers[0]!.conn.invoke('Send', { kind: 'all' }, 'marker')
    await within(marker, 'the marker')
    const sends = envelopes.filter((e) => e[1] === 1)
    const watched = sends.filter((e) => Buffer.from(e[3] as Uint8Array).toString('utf8').includes('"watched"'))
    t.equal(watched.length, 1, 'one publication for three receivers on three servers')
    const [origin, kind, target, json, binary] = watched[0]! as [Buffer, number, unknown, Uint8Array, Uint8Array]
    t.equal(kind, 1)
    t.equal(origin.length, 16, 'after the 16-byte origin header')
    t.same(target, { kind: 'all', exclude: null })
    t.equal(Buffer.from(json).toString('utf8'), '{"type":1,"target":"Msg","arguments":["watched"]}\u001e', 'the JSON record, framed')
    const decoded = new MessagePackHubProtocol().parseMessages(new Uint8Array(binary).buffer, signalR.NullLogger.instance)
    t.match(decoded, [{ type: 1, target: 'Msg', arguments: ['watched'] }], 'the MessagePack message, framed, readable by the official protocol')
  })

  t.test('a service without a hub publishes an envelope and every client gets it', async (t) => {
    const peers: Peer[] = [
      await connectPeer(t, servers, { name: 'json', server: 0, cell: WS_JSON }),
      await connectPeer(t, servers, { name: 'sse', server: 1, cell: SSE_JSON }),
      await connectPeer(t, servers, { name: 'lp-msgpack', server: 2, cell: LP_MSGPACK })
    ]
    const publisher = new Redis({ port: redis.port, host: '127.0.0.1' })
    t.teardown(() => { publisher.disconnect() })
    const json = Buffer.from('{"type":1,"target":"Msg","arguments":["external"]}\u001e')
    const binary = Buffer.from(new MessagePackHubProtocol().writeMessage({
      type: signalR.MessageType.Invocation, target: 'Msg', arguments: ['external'], headers: {}
    } as signalR.InvocationMessage))
    const packr = new Packr({ useRecords: false })
    const all = Promise.all(peers.map((p) => receives(p, 'external')))
    const origin = Buffer.alloc(16, 'a-service')
    const receivers = await publisher.publish('signalr:contract:all',
      Buffer.concat([origin, packr.pack([1, { kind: 'all', exclude: null }, json, binary])]))
    t.equal(receivers, 3, 'each server subscribes to the documented channel')
    await within(all, 'the external message')
    t.pass('JSON, SSE and MessagePack clients on three servers receive it')
  })
})
