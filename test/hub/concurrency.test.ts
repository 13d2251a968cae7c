import t from 'tap'
import { z } from 'zod'
import { defineHub } from '../../lib/index.js'
import { startApp } from '../helpers/app.js'
import { deferredByKey } from '../helpers/deferred.js'
import { connect } from '../helpers/clients.js'
import { rawConnect, type RawRecord } from '../helpers/raw.js'

/**
 * `Hold(name)` logs its start, waits until the test releases `name`, logs its
 * end and returns the name. The log shows which invocations overlapped.
 */
function holdHub () {
  const log: string[] = []
  const startedBy = deferredByKey()
  const releaseOf = deferredByKey()
  const hub = defineHub({
    methods: {
      Hold: {
        args: [z.string()],
        async handler (_hub, name) {
          log.push(`start:${name}`)
          startedBy(name).resolve()
          await releaseOf(name).promise
          log.push(`end:${name}`)
          return name
        }
      },
      Count: {
        args: [z.number().int().min(0)],
        stream: true,
        * handler (_hub, n) { for (let i = 0; i < n; i++) yield i }
      },
      AskCaller: { args: [], handler: (hub) => hub.clients.caller.invoke('GetMessage') }
    }
  })
  return {
    hub,
    log,
    started: (name: string) => startedBy(name).promise,
    release: (name: string) => { releaseOf(name).resolve() }
  }
}

/** Tracks whether a promise has settled, to show that one invocation finished while another still runs. */
function track<T> (promise: Promise<T>): { promise: Promise<T>, readonly settled: boolean } {
  let settled = false
  const tracked = promise.finally(() => { settled = true })
  return { promise: tracked, get settled () { return settled } }
}

// A deadlock here would only end at tap's timeout; fail sooner.
const timeout = 10_000

t.test('default maximumParallelInvocationsPerClient (1): one connection runs its invocations one by one, in order', { timeout }, async (t) => {
  const h = holdHub()
  const { baseUrl } = await startApp(t, (app) => { app.mapHub('/hub', h.hub) })
  const c = await connect(t, `${baseUrl}/hub`)

  // Invoked in one tick, the client sends all three in one WebSocket message
  // (its send queue batches), so the server has read b and c before a starts.
  const a = c.invoke('Hold', 'a')
  const b = c.invoke('Hold', 'b')
  const d = c.invoke('Hold', 'c')

  await h.started('a')
  t.same(h.log, ['start:a'], 'b waits while a runs')
  h.release('a')
  t.equal(await a, 'a')
  await h.started('b')
  t.same(h.log, ['start:a', 'end:a', 'start:b'], 'b starts only once a has finished, and before c')
  h.release('b')
  await h.started('c')
  h.release('c')
  t.same(await Promise.all([b, d]), ['b', 'c'])
  t.same(h.log, ['start:a', 'end:a', 'start:b', 'end:b', 'start:c', 'end:c'])
})

t.test('maximumParallelInvocationsPerClient: 1, byte-exact: invocations in one frame run in arrival order', { timeout }, async (t) => {
  const h = holdHub()
  const { wsUrl } = await startApp(t, (app) => { app.mapHub('/hub', h.hub) }, { maximumParallelInvocationsPerClient: 1 })
  const raw = await rawConnect(t, `${wsUrl}/hub`, { handshake: true, ignorePings: true })

  raw.send(
    { invocationId: '1', target: 'Hold', arguments: ['first'], type: 1 },
    { invocationId: '2', target: 'Hold', arguments: ['second'], type: 1 },
    { invocationId: '3', target: 'Hold', arguments: ['third'], type: 1 }
  )
  const completions: RawRecord[] = []
  for (const name of ['first', 'second', 'third']) {
    await h.started(name)
    h.release(name)
    completions.push(await raw.next())
  }
  t.same(h.log, ['start:first', 'end:first', 'start:second', 'end:second', 'start:third', 'end:third'])
  t.same(completions, [
    { type: 3, invocationId: '1', result: 'first' },
    { type: 3, invocationId: '2', result: 'second' },
    { type: 3, invocationId: '3', result: 'third' }
  ])
})

t.test('maximumParallelInvocationsPerClient: 2 runs two invocations of one connection at once', { timeout }, async (t) => {
  const h = holdHub()
  const { baseUrl } = await startApp(t, (app) => { app.mapHub('/hub', h.hub) }, { maximumParallelInvocationsPerClient: 2 })
  const c = await connect(t, `${baseUrl}/hub`)

  const a = track(c.invoke('Hold', 'a'))
  const b = c.invoke('Hold', 'b')
  const third = c.invoke('Hold', 'c')

  await h.started('a')
  await h.started('b')
  t.same(h.log, ['start:a', 'start:b'], 'a and b run together; c waits for a free slot')
  h.release('b')
  t.equal(await b, 'b', 'b finishes while a still runs')
  await h.started('c')
  t.equal(a.settled, false)
  t.same(h.log, ['start:a', 'start:b', 'end:b', 'start:c'], "c took b's slot")
  h.release('a')
  h.release('c')
  t.same(await Promise.all([a.promise, third]), ['a', 'c'])
})

t.test('invocations of different connections do not block each other', { timeout }, async (t) => {
  const h = holdHub()
  const { baseUrl } = await startApp(t, (app) => { app.mapHub('/hub', h.hub) })
  const one = await connect(t, `${baseUrl}/hub`)
  const two = await connect(t, `${baseUrl}/hub`)

  const a = track(one.invoke('Hold', 'a'))
  await h.started('a')
  const b = two.invoke('Hold', 'b')
  await h.started('b')
  h.release('b')
  t.equal(await b, 'b', "the second connection's invocation finished")
  t.equal(a.settled, false, "while the first connection's still runs")
  h.release('a')
  t.equal(await a.promise, 'a')
  t.same(h.log, ['start:a', 'start:b', 'end:b', 'end:a'])
})

t.test('streaming invocations do not take an invocation slot', { timeout }, async (t) => {
  const h = holdHub()
  const { baseUrl } = await startApp(t, (app) => { app.mapHub('/hub', h.hub) })
  const c = await connect(t, `${baseUrl}/hub`)

  const a = track(c.invoke('Hold', 'a'))
  await h.started('a')
  const items: number[] = []
  await new Promise<void>((resolve, reject) => {
    c.stream<number>('Count', 3).subscribe({ next: (i) => { items.push(i) }, complete: resolve, error: reject })
  })
  t.same(items, [0, 1, 2], 'the stream ran while the only slot was taken')
  t.equal(a.settled, false)
  h.release('a')
  t.equal(await a.promise, 'a')
})

t.test('a client-result wait gives the slot back exactly once', { timeout }, async (t) => {
  const h = holdHub()
  const { baseUrl } = await startApp(t, (app) => { app.mapHub('/hub', h.hub) }, { maximumParallelInvocationsPerClient: 1 })
  const c = await connect(t, `${baseUrl}/hub`)
  c.on('GetMessage', () => 'hi')

  t.equal(await c.invoke('AskCaller'), 'hi')
  t.equal(await c.invoke('AskCaller'), 'hi')

  // Had the slot been freed twice, b would now run next to a.
  const a = c.invoke('Hold', 'a')
  const b = c.invoke('Hold', 'b')
  await h.started('a')
  t.same(h.log, ['start:a'], 'still one invocation at a time')
  h.release('a')
  h.release('b')
  t.same(await Promise.all([a, b]), ['a', 'b'])
  t.same(h.log, ['start:a', 'end:a', 'start:b', 'end:b'])
})
