import type { Test } from 'tap'
import { connect, type ClientOptions, type signalR } from './clients.js'

/** An official client of a test hub that records every `Msg` it receives. */
export interface Peer {
  readonly name: string
  readonly conn: signalR.HubConnection
  readonly id: string
  /** Every `Msg` payload received since the last reset, in order. */
  readonly got: unknown[]
}

/** Connects a peer to a hub whose `WhoAmI` returns the caller's connection id. */
export async function peer (t: Test, url: string, name: string, options: ClientOptions = {}): Promise<Peer> {
  const got: unknown[] = []
  const conn = await connect(t, url, { ...options, before: (c) => { c.on('Msg', (m: unknown) => { got.push(m) }) } })
  return { name, conn, id: await conn.invoke('WhoAmI') as string, got }
}

/** Resolves when `peer` receives `value` as a `Msg`. */
export function receives (peer: { readonly conn: signalR.HubConnection }, value: string): Promise<void> {
  return new Promise((resolve) => {
    const handler = (m: unknown): void => {
      if (m !== value) return
      peer.conn.off('Msg', handler)
      resolve()
    }
    peer.conn.on('Msg', handler)
  })
}

let barriers = 0

/**
 * Runs `action`, then has the first peer broadcast a barrier (the hub's
 * `ToAll`) and waits until every peer has it. A connection's messages arrive in
 * order, so a peer that must not receive `payload` has seen exactly the
 * barrier, and a receiver `payload` once, then the barrier.
 */
export async function expectDelivery (
  t: Test, peers: readonly Peer[], what: string, payload: string, receivers: readonly Peer[], action: () => Promise<unknown>
): Promise<void> {
  for (const p of peers) p.got.length = 0
  await action()
  const barrier = `barrier-${++barriers}`
  const all = Promise.all(peers.map((p) => receives(p, barrier)))
  await peers[0]!.conn.invoke('ToAll', barrier)
  await all
  for (const p of peers) {
    const receives = receivers.includes(p)
    t.same(p.got, receives ? [payload, barrier] : [barrier], `${what}: ${p.name} ${receives ? 'receives one copy' : 'receives nothing'}`)
  }
}
