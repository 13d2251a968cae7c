import { spawn } from 'node:child_process'
import { fileURLToPath } from 'node:url'
import t from 'tap'
import { z } from 'zod'
import { defineHub } from '../lib/index.js'
import { startApp } from './helpers/app.js'
import { closed, connect } from './helpers/clients.js'
import { invocation, rawConnect } from './helpers/raw.js'

const ROOT = fileURLToPath(new URL('..', import.meta.url))

const echo = defineHub({
  methods: {
    Echo: { args: [z.string()], handler: (_hub, s) => s },
    Id: { args: [], handler: (hub) => hub.connectionId }
  }
})

t.test('app.close() sends every client a Close with allowReconnect', async (t) => {
  const { app, baseUrl, wsUrl } = await startApp(t, (app) => { app.mapHub('/hub', echo) })
  const rawA = await rawConnect(t, `${wsUrl}/hub`, { handshake: true, ignorePings: true })
  const rawB = await rawConnect(t, `${wsUrl}/hub`, { handshake: true, ignorePings: true })
  const official = await connect(t, `${baseUrl}/hub`)
  t.equal(await official.invoke('Echo', 'up'), 'up')
  const officialClosed = closed(official)

  await app.close()

  for (const raw of [rawA, rawB]) {
    t.equal(await raw.nextText(), '{"type":7,"allowReconnect":true}', 'the exact Close record')
    t.equal((await raw.closed).code, 1000)
  }
  // Without withAutomaticReconnect the client just stops; the Close carries no error.
  t.equal(await officialClosed, undefined, 'the official client\'s onclose fires, without error')
})

t.test('app.close() waits for async onDisconnected hooks', async (t) => {
  const events: string[] = []
  const hub = defineHub({
    methods: { Id: { args: [], handler: (hub) => hub.connectionId } },
    async onDisconnected (hub) {
      events.push(`start ${hub.connectionId}`)
      // Long enough that a close() which does not wait would resolve first.
      await new Promise((resolve) => { setTimeout(resolve, 200) })
      events.push(`end ${hub.connectionId}`)
    }
  })
  const { app, wsUrl } = await startApp(t, (app) => { app.mapHub('/hub', hub) })
  const ids: string[] = []
  for (let i = 0; i < 2; i++) {
    const raw = await rawConnect(t, `${wsUrl}/hub`, { handshake: true, ignorePings: true })
    raw.send(invocation('Id', [], 'id'))
    ids.push((await raw.next()).result as string)
  }

  await app.close()
  events.push('closed')

  t.equal(events.length, 5)
  t.equal(events.at(-1), 'closed', 'close() resolved last')
  for (const id of ids) {
    t.ok(events.indexOf(`start ${id}`) < events.indexOf(`end ${id}`), `onDisconnected of ${id} ran to its end`)
  }
})

t.test('nothing is left behind: the process exits on its own', async (t) => {
  const child = spawn(process.execPath, ['--import', 'tsx', 'test/fixtures/shutdown-child.ts'], {
    cwd: ROOT,
    stdio: ['ignore', 'pipe', 'pipe'],
    // A bound, not a wait: a child kept alive by a leaked handle is killed and fails below.
    timeout: 30_000
  })
  let stdout = ''
  let stderr = ''
  child.stdout.setEncoding('utf8').on('data', (chunk: string) => { stdout += chunk })
  child.stderr.setEncoding('utf8').on('data', (chunk: string) => { stderr += chunk })
  const [code, signal] = await new Promise<[number | null, NodeJS.Signals | null]>((resolve) => {
    child.once('exit', (code, signal) => { resolve([code, signal]) })
  })

  t.equal(signal, null, 'not killed by the time bound')
  t.equal(code, 0, `exit code 0${stderr === '' ? '' : `; stderr: ${stderr}`}`)
  const report = JSON.parse(stdout.trim().split('\n').at(-1) ?? '{}') as { active?: string[], leaked?: string[] }
  t.ok(Array.isArray(report.active), 'the child printed its active resources')
  const active = report.active ?? []
  t.notOk(active.includes('Timeout'), `no ref'd timer: ${JSON.stringify(active)}`)
  t.notOk(active.includes('TCPSocketWrap'), 'no socket')
  t.notOk(active.includes('TCPServerWrap'), 'no server')
  t.same(report.leaked, [], 'no timer created by the plugin and no TCP handle is still alive, unref\'d or not')
})
