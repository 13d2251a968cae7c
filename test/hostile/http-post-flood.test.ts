import diagnostics from 'node:diagnostics_channel'
import { EventEmitter, once } from 'node:events'
import { request, type ClientRequest } from 'node:http'
import t from 'tap'
import { z } from 'zod'
import type { HubConnection } from '../../lib/connection/connection.js'
import { defineHub, type Hub } from '../../lib/index.js'
import type { HttpTransportBase } from '../../lib/transports/http-inbound.js'
import { MAX_WAITING_SENDS, PAUSED_ALLOWANCE } from '../../lib/transports/http-inbound.js'
import { startApp } from '../helpers/app.js'
import { deferred } from '../helpers/deferred.js'
import { handshakeRequest, invocation, negotiateRaw, record } from '../helpers/raw.js'

/**
 * A client that ignores backpressure on long polling: while its connection
 * cannot take messages (the only invocation slot is busy), it fires many
 * large POSTs at once. The server must not read and parse them all.
 */
const FLOOD = 24
/** Records per POST and their size: a body just under the 1 MB POST limit, each record under 32 KB. */
const RECORDS = 30
const PADDING = 'x'.repeat(30_000)

/** The server's side of a hub invocation (white-box: the connection behind `hub`). */
function connectionOf (hub: Hub): HubConnection {
  return (hub as unknown as { connection: HubConnection }).connection
}

/** Tells when a connection pauses reading and when a POST gives up its turn (the plugin's diagnostics channels, see lib/diagnostics.ts). */
const inbound = new EventEmitter()
const onPause = (): void => { inbound.emit('paused') }
const onLeave = (): void => { inbound.emit('left') }
diagnostics.subscribe('fastify-signalr.http.inbound.pause', onPause)
diagnostics.subscribe('fastify-signalr.http.inbound.leave', onLeave)
t.teardown(() => {
  diagnostics.unsubscribe('fastify-signalr.http.inbound.pause', onPause)
  diagnostics.unsubscribe('fastify-signalr.http.inbound.leave', onLeave)
})

/** A POST on a socket of its own, as independent clients (or a browser's several connections) would send it. */
function send (url: string, body: string): { request: ClientRequest, status: Promise<number> } {
  let req!: ClientRequest
  const status = new Promise<number>((resolve, reject) => {
    req = request(url, { method: 'POST', agent: false, headers: { 'content-type': 'text/plain' } }, (res) => {
      res.resume()
      res.on('end', () => { resolve(res.statusCode ?? 0) })
    })
    req.on('error', reject)
    req.end(body)
  })
  return { request: req, status }
}

function post (url: string, body: string): Promise<number> {
  return send(url, body).status
}

/** Resolves once `count` of `statuses` have come back as 429. */
function refusals (statuses: Array<Promise<number>>, count: number): Promise<void> {
  return new Promise((resolve) => {
    let refused = 0
    for (const status of statuses) void status.then((code) => { if (code === 429 && ++refused === count) resolve() }, () => {})
  })
}

t.test('many large concurrent POSTs at a paused long-polling connection: one body at a time, the rest wait unread or are refused', async (t) => {
  const hold = deferred()
  const held = deferred<HubConnection>()
  // The first POST read blocks the connection; MAX_WAITING_SENDS wait behind it unread; the rest are refused.
  const refusedCount = FLOOD - 1 - MAX_WAITING_SENDS
  const expectedEchoes = (FLOOD - refusedCount) * RECORDS
  const allEchoed = deferred()
  let echoes = 0
  let peakBuffered = 0
  let peakWaiting = 0
  const hub = defineHub({
    methods: {
      Hold: { args: [], async handler (hub) { held.resolve(connectionOf(hub)); await hold.promise } },
      Echo: {
        args: [z.string()],
        // Each call holds the only slot for a moment: the connection pauses and resumes over and over.
        async handler (hub) {
          await new Promise((resolve) => setImmediate(resolve))
          const connection = connectionOf(hub)
          if (++echoes === expectedEchoes) allEchoed.resolve()
          peakBuffered = Math.max(peakBuffered, connection.bufferedInboundBytes)
          peakWaiting = Math.max(peakWaiting, (connection.transport as unknown as HttpTransportBase).inbound.waiting)
        }
      }
    }
  })
  const { baseUrl } = await startApp(t, (app) => { app.mapHub('/hub', hub) })
  const { body: negotiated } = await negotiateRaw(`${baseUrl}/hub`)
  const url = `${baseUrl}/hub?id=${String(negotiated.connectionToken)}`
  t.equal((await fetch(url)).status, 200, 'first poll')
  t.equal(await post(url, handshakeRequest()), 200, 'handshake')
  t.equal(await (await fetch(url)).text(), '{}\u001e', 'handshake answer')
  t.equal(await post(url, record(invocation('Hold', [], '1'))), 200, 'Hold takes the only invocation slot')
  const connection = await held.promise

  const body = Array.from({ length: RECORDS }, () => record(invocation('Echo', [PADDING]))).join('')
  const statuses = Array.from({ length: FLOOD }, () => post(url, body))
  await refusals(statuses, refusedCount)

  // Every POST has now reached the server: refused, waiting or the one being taken.
  t.equal((connection.transport as unknown as HttpTransportBase).inbound.waiting, MAX_WAITING_SENDS, 'the others wait for their turn with their bodies unread')
  t.ok((connection.transport as unknown as HttpTransportBase).inbound.isPaused, 'the connection paused its transport')
  t.ok(connection.bufferedInboundBytes <= body.length + PAUSED_ALLOWANCE,
    `at most one body and the allowance in the inbox (${connection.bufferedInboundBytes} bytes of ${FLOOD * body.length} sent)`)

  hold.resolve()
  const answered = await Promise.all(statuses)
  t.equal(answered.filter((s) => s === 200).length, FLOOD - refusedCount, 'every POST that waited is taken in turn')
  t.equal(answered.filter((s) => s === 429).length, refusedCount)
  await allEchoed.promise
  t.equal(echoes, expectedEchoes, 'every message of the accepted POSTs ran, once')
  t.ok(peakBuffered <= body.length + PAUSED_ALLOWANCE, `the inbox never held more than one body and the allowance (peak ${peakBuffered} bytes)`)
  t.ok(peakWaiting <= MAX_WAITING_SENDS)
})

t.test('a client that aborts its POST once the connection paused lets no other body in until it resumes', async (t) => {
  const hold = deferred()
  const held = deferred<HubConnection>()
  let echoes = 0
  const hub = defineHub({
    methods: {
      Hold: { args: [], async handler (hub) { held.resolve(connectionOf(hub)); await hold.promise } },
      Echo: { args: [z.string()], handler () { echoes++ } }
    }
  })
  const { baseUrl } = await startApp(t, (app) => { app.mapHub('/hub', hub) })
  const { body: negotiated } = await negotiateRaw(`${baseUrl}/hub`)
  const url = `${baseUrl}/hub?id=${String(negotiated.connectionToken)}`
  await fetch(url)
  await post(url, handshakeRequest())
  await fetch(url)
  await post(url, record(invocation('Hold', [], '1')))
  const connection = await held.promise

  const body = Array.from({ length: RECORDS }, () => record(invocation('Echo', [PADDING]))).join('')
  const paused = once(inbound, 'paused')
  const first = send(url, body)
  first.status.catch(() => {})
  await paused
  const left = once(inbound, 'left')
  first.request.destroy()
  await left

  // Its messages still wait in the inbox: nothing else is read, however many come.
  const statuses = Array.from({ length: MAX_WAITING_SENDS + 3 }, () => post(url, body))
  await refusals(statuses, 3)
  const waiting = (connection.transport as unknown as HttpTransportBase).inbound.waiting
  t.equal(waiting, MAX_WAITING_SENDS, 'every later POST waits unread')
  t.ok(connection.bufferedInboundBytes <= body.length + PAUSED_ALLOWANCE, `one body in the inbox (${connection.bufferedInboundBytes} bytes)`)

  hold.resolve()
  const answered = await Promise.all(statuses)
  t.equal(answered.filter((s) => s === 200).length, MAX_WAITING_SENDS, 'once it resumes they are taken in turn')
  t.equal(echoes, (MAX_WAITING_SENDS + 1) * RECORDS, 'the aborted POST\'s messages ran too: they had been taken')
})
