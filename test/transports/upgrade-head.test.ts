// A client that does not wait for the 101 and sends its first WebSocket frame
// in the same TCP write as the upgrade request (RFC 6455 says it should wait;
// some do not). Those bytes arrive with the request, as the upgrade's `head`:
// the hub must read them, or the handshake is lost and the client hangs.
import { connect } from 'node:net'
import t from 'tap'
import { z } from 'zod'
import { defineHub } from '../../lib/index.js'
import { startApp } from '../helpers/app.js'
import { handshakeRequest, invocation, record } from '../helpers/raw.js'

const hub = defineHub({ methods: { Add: { args: [z.number(), z.number()], handler: (_hub, a, b) => a + b } } })

/** A client-to-server text frame (masked, as RFC 6455 requires of clients); payloads under 126 bytes. */
function maskedText (text: string): Buffer {
  const payload = Buffer.from(text, 'utf8')
  const mask = Buffer.from([0x12, 0x34, 0x56, 0x78])
  const masked = payload.map((byte, i) => byte ^ mask[i % 4]!)
  return Buffer.concat([Buffer.from([0x81, 0x80 | payload.length]), mask, masked])
}

t.test('a handshake frame sent together with the upgrade request is answered', async (t) => {
  const { baseUrl } = await startApp(t, (app) => { app.mapHub('/hub', hub) })
  const port = new URL(baseUrl).port
  const socket = connect(Number(port), '127.0.0.1')
  t.teardown(() => { socket.destroy() })
  let received = Buffer.alloc(0)
  const waiters: Array<() => void> = []
  socket.on('data', (chunk: Buffer) => {
    received = Buffer.concat([received, chunk])
    for (const wake of waiters.splice(0)) wake()
  })
  /** Resolves once the bytes after the 101 response contain `text` (server frames are unmasked, so it shows as is). */
  const untilReceived = async (text: string): Promise<void> => {
    while (!received.subarray(received.indexOf('\r\n\r\n') + 4).includes(text)) {
      await new Promise<void>((resolve) => { waiters.push(resolve) })
    }
  }
  socket.write(Buffer.concat([
    Buffer.from(`GET /hub HTTP/1.1\r\nHost: 127.0.0.1:${port}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n` +
      'Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n'),
    maskedText(handshakeRequest())
  ]))
  await untilReceived('{}\u001e')
  t.ok(received.toString('latin1').startsWith('HTTP/1.1 101 '), 'the upgrade succeeded')
  t.pass('the handshake that came with the request was read and answered')
  socket.write(maskedText(record(invocation('Add', [20, 22], '1'))))
  await untilReceived('{"type":3,"invocationId":"1","result":42}\u001e')
  t.pass('and the connection goes on')
})
