import { existsSync } from 'node:fs'
import { connect as connectTcp } from 'node:net'
import type { Test } from 'tap'
import { startDaemon, type Daemon } from './daemon.js'

/** NATS_SERVER, else Debian's nats-server package (/usr/sbin is not on every user's PATH), else the PATH's. */
export const NATS_SERVER = process.env.NATS_SERVER ?? (existsSync('/usr/sbin/nats-server') ? '/usr/sbin/nats-server' : 'nats-server')

export interface NatsServer extends Daemon {
  /** nats://127.0.0.1:PORT */
  readonly url: string
}

/** True once a client connection on `port` receives the server's `INFO {...}` greeting. */
function greets (port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = connectTcp({ port, host: '127.0.0.1' })
    let text = ''
    const finish = (ok: boolean): void => {
      socket.destroy()
      resolve(ok)
    }
    socket.setTimeout(1000, () => { finish(false) })
    socket.once('error', () => { finish(false) })
    socket.on('data', (chunk) => {
      text += chunk.toString('latin1')
      if (text.includes('\r\n')) finish(text.startsWith('INFO '))
    })
  })
}

/** A private nats-server on a free loopback port, killed by PID in teardown. */
export async function startNats (t: Test): Promise<NatsServer> {
  const daemon = await startDaemon(t, {
    name: 'nats-server',
    command: NATS_SERVER,
    args: (port) => ['-a', '127.0.0.1', '-p', String(port)],
    ready: greets
  })
  return Object.assign(daemon, { url: `nats://127.0.0.1:${daemon.port}` })
}
