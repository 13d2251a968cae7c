// The SEND envelope as services outside the cluster read and write it, for
// the engine tests (Redis, NATS) that watch or feed the bus directly.
import { MessagePackHubProtocol } from '@microsoft/signalr-protocol-msgpack'
import { Packr, Unpackr } from 'msgpackr'
import type { Test } from 'tap'
import { signalR } from '../helpers/clients.js'
import { connectPeer, LP_MSGPACK, receives, within, WS_JSON, WS_MSGPACK, type ClusterServer, type Peer } from './contract.js'

const ORIGIN_BYTES = 16
const unpackr = new Unpackr({ useRecords: false, mapsAsObjects: true })

/** Reads a bus payload: the 16-byte origin header, then the MessagePack envelope. */
export function readPayload (payload: Uint8Array): { origin: Buffer, envelope: unknown[] } {
  const bytes = Buffer.from(payload)
  return { origin: bytes.subarray(0, ORIGIN_BYTES), envelope: unpackr.unpack(bytes.subarray(ORIGIN_BYTES)) as unknown[] }
}

/** Checks a `[1, target, json, messagePack]` envelope of `Msg(text)` sent to all. */
export function checkSendAllEnvelope (t: Test, envelope: unknown[], text: string): void {
  const [kind, target, json, binary] = envelope as [number, unknown, Uint8Array, Uint8Array]
  t.equal(kind, 1)
  t.same(target, { kind: 'all', exclude: null })
  t.equal(Buffer.from(json).toString('utf8'), `{"type":1,"target":"Msg","arguments":[${JSON.stringify(text)}]}\u001e`, 'the JSON record, framed')
  const decoded = new MessagePackHubProtocol().parseMessages(new Uint8Array(binary).buffer, signalR.NullLogger.instance)
  t.match(decoded, [{ type: 1, target: 'Msg', arguments: [text] }], 'the MessagePack message, readable by the official protocol')
}

/** A SEND envelope of `Msg(text)` to all, as a service without a hub would publish it. */
export function externalSendAllEnvelope (text: string): Buffer {
  const json = Buffer.from(`{"type":1,"target":"Msg","arguments":[${JSON.stringify(text)}]}\u001e`)
  const binary = Buffer.from(new MessagePackHubProtocol().writeMessage({
    type: signalR.MessageType.Invocation, target: 'Msg', arguments: [text], headers: {}
  } as signalR.InvocationMessage))
  const origin = Buffer.alloc(ORIGIN_BYTES, 7) // any id but a server's
  return Buffer.concat([origin, new Packr({ useRecords: false }).pack([1, { kind: 'all', exclude: null }, json, binary])])
}

/**
 * One client on each of three servers (JSON, MessagePack, long-polling
 * MessagePack); the first sends `watched` to all, then `marker`, and this
 * resolves once every client has both: by then a watcher of the bus that
 * subscribed earlier has been handed the `watched` publication.
 */
export async function sendWatchedToAll (t: Test, servers: readonly ClusterServer[]): Promise<void> {
  const peers: Peer[] = [
    await connectPeer(t, servers, { name: 'json', server: 0, cell: WS_JSON }),
    await connectPeer(t, servers, { name: 'msgpack', server: 1, cell: WS_MSGPACK }),
    await connectPeer(t, servers, { name: 'lp-msgpack', server: 2, cell: LP_MSGPACK })
  ]
  for (const text of ['watched', 'marker']) {
    const all = Promise.all(peers.map((p) => receives(p, text)))
    await peers[0]!.conn.invoke('Send', { kind: 'all' }, text)
    await within(all, `the ${text} message`)
  }
}
