import { existsSync } from 'node:fs'
import { mkdtemp, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import type { Test } from 'tap'
import { firstLineStartsWith, startDaemon, type Daemon } from './daemon.js'

/** NATS_SERVER, else Debian's nats-server package (/usr/sbin is not on every user's PATH), else the PATH's. */
export const NATS_SERVER = process.env.NATS_SERVER ?? (existsSync('/usr/sbin/nats-server') ? '/usr/sbin/nats-server' : 'nats-server')

export interface NatsServer extends Daemon {
  /** nats://127.0.0.1:PORT */
  readonly url: string
}

/**
 * A private nats-server on a free loopback port, killed by PID in teardown.
 * `config` (nats-server configuration text, e.g. an `authorization` block) is
 * written to a private temporary file; the port and address flags override it.
 */
export async function startNats (t: Test, config?: string): Promise<NatsServer> {
  let configArgs: string[] = []
  if (config !== undefined) {
    const dir = await mkdtemp(join(tmpdir(), 'signalr-nats-'))
    t.teardown(() => rm(dir, { recursive: true, force: true }))
    const file = join(dir, 'nats.conf')
    await writeFile(file, config)
    configArgs = ['-c', file]
  }
  const daemon = await startDaemon(t, {
    name: 'nats-server',
    command: NATS_SERVER,
    args: (port) => [...configArgs, '-a', '127.0.0.1', '-p', String(port)],
    // Ready once a client connection receives the server's `INFO {...}` greeting.
    ready: (port) => firstLineStartsWith(port, 'INFO ')
  })
  return Object.assign(daemon, { url: `nats://127.0.0.1:${daemon.port}` })
}
