import WebSocket from 'ws'
import { Unpackr } from 'msgpackr'
import type { Test } from 'tap'
import { frameBinary } from '../../lib/protocol/binary-framing.js'

/** Reads what the server writes; int64 as numbers, as the official client does. */
const unpackr = new Unpackr({ useRecords: false, mapsAsObjects: true, int64AsType: 'number' })

export interface RawMessagePackClient {
  /** Sends one MessagePack body (the length prefix is added) in one WebSocket message. */
  send (body: Uint8Array): void
  /** The next message the server wrote (pings skipped), decoded. Rejects once the socket closed. */
  next (): Promise<unknown[]>
  readonly closed: Promise<number>
}

function * bodies (data: Buffer): Generator<Buffer> {
  let pos = 0
  while (pos < data.length) {
    let length = 0
    let shift = 1
    let byte: number
    do {
      byte = data[pos++]!
      length += (byte & 0x7f) * shift
      shift *= 128
    } while ((byte & 0x80) !== 0)
    yield data.subarray(pos, pos + length)
    pos += length
  }
}

/** A WebSocket that speaks the MessagePack hub protocol byte by byte (no negotiate); closed in teardown. */
export async function rawMessagePack (t: Test, url: string): Promise<RawMessagePackClient> {
  const ws = new WebSocket(url)
  t.teardown(() => { if (ws.readyState !== WebSocket.CLOSED) ws.terminate() })
  const items: Array<unknown[] | Error> = []
  const waiters: Array<(item: unknown[] | Error) => void> = []
  const push = (item: unknown[] | Error): void => {
    const waiter = waiters.shift()
    if (waiter !== undefined) waiter(item)
    else items.push(item)
  }
  let handshaken = false
  const handshake = new Promise<void>((resolve, reject) => {
    ws.on('message', (data: Buffer) => {
      if (!handshaken) {
        handshaken = true
        if (data.toString('utf8') === '{}\u001e') resolve()
        else reject(new Error(`handshake refused: ${data.toString('utf8')}`))
        return
      }
      for (const body of bodies(data)) {
        const message = unpackr.unpack(body) as unknown[]
        if (message[0] !== 6) push(message)
      }
    })
  })
  const closed = new Promise<number>((resolve) => {
    ws.on('close', (code: number) => {
      for (const waiter of waiters.splice(0)) waiter(new Error('socket closed'))
      items.push(new Error('socket closed'))
      resolve(code)
    })
  })
  ws.on('error', () => {})
  await new Promise<void>((resolve, reject) => {
    ws.once('open', () => { resolve() })
    ws.once('close', () => { reject(new Error('socket closed before it opened')) })
  })
  ws.send('{"protocol":"messagepack","version":1}\u001e')
  await handshake
  return {
    send (body) { ws.send(frameBinary(body)) },
    async next () {
      const item = items.length > 0 ? items.shift()! : await new Promise<unknown[] | Error>((resolve) => { waiters.push(resolve) })
      if (item instanceof Error) {
        items.unshift(item)
        throw item
      }
      return item
    },
    closed
  }
}
