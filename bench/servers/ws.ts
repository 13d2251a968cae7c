/**
 * The floor: a raw `ws` server. A broadcast or group send builds its frame
 * once and writes that same buffer to every socket; echo answers at once.
 *
 * Wire format (text frames, first character is the operation):
 *   e<anything>         echo: the same message comes back
 *   b<payload>          broadcast <payload> to every connection
 *   g<group> <payload>  send <payload> to every member of <group>
 *   j<group>            join <group>; answered with `j`
 */
import { createServer } from 'node:http'
import type { Duplex } from 'node:stream'
import { WebSocketServer, type RawData, type WebSocket } from 'ws'
import { announce, driverControls, portFromArgs } from './common.js'

interface Peer {
  ws: WebSocket
  // The socket `ws` writes to; writing a pre-built frame here skips the
  // per-send framing that `ws.send` does, which is the point of the floor.
  socket: Duplex
  group: string | null
}

const peers = new Set<Peer>()
const groups = new Map<string, Set<Peer>>()

/** An unmasked, final, text frame around `payload` (RFC 6455 §5.2). */
function textFrame (payload: Buffer): Buffer {
  const n = payload.length
  const header = n < 126 ? 2 : n < 65536 ? 4 : 10
  const frame = Buffer.allocUnsafe(header + n)
  frame[0] = 0x81
  if (n < 126) {
    frame[1] = n
  } else if (n < 65536) {
    frame[1] = 126
    frame.writeUInt16BE(n, 2)
  } else {
    frame[1] = 127
    frame.writeBigUInt64BE(BigInt(n), 2)
  }
  payload.copy(frame, header)
  return frame
}

function writeAll (members: Iterable<Peer>, frame: Buffer): void {
  for (const peer of members) {
    if (peer.ws.readyState === 1) peer.socket.write(frame)
  }
}

function onMessage (peer: Peer, data: Buffer): void {
  switch (data[0]) {
    case 0x65: // e
      peer.ws.send(data, { binary: false })
      break
    case 0x62: // b
      writeAll(peers, textFrame(data.subarray(1)))
      break
    case 0x67: { // g
      const space = data.indexOf(0x20)
      const members = groups.get(data.toString('latin1', 1, space))
      if (members !== undefined) writeAll(members, textFrame(data.subarray(space + 1)))
      break
    }
    case 0x6a: { // j
      const name = data.toString('latin1', 1)
      let members = groups.get(name)
      if (members === undefined) groups.set(name, members = new Set())
      members.add(peer)
      peer.group = name
      peer.ws.send('j')
      break
    }
  }
}

function leave (peer: Peer): void {
  peers.delete(peer)
  if (peer.group === null) return
  const members = groups.get(peer.group)
  if (members === undefined) return
  members.delete(peer)
  if (members.size === 0) groups.delete(peer.group)
}

driverControls()
const wss = new WebSocketServer({ noServer: true, perMessageDeflate: false, clientTracking: false })
const server = createServer((_req, res) => { res.writeHead(404).end() })
server.on('upgrade', (req, socket, head) => {
  wss.handleUpgrade(req, socket, head, (ws) => {
    const peer: Peer = { ws, socket, group: null }
    peers.add(peer)
    ws.on('message', (data: RawData) => onMessage(peer, data as Buffer))
    ws.on('close', () => leave(peer))
    ws.on('error', () => ws.terminate())
  })
})
server.listen(portFromArgs(), '127.0.0.1', () => {
  announce((server.address() as { port: number }).port)
})
