// The NATS backplane on its own, against a private nats-server.
import { Writable } from 'node:stream'
import { connect, type ConnectionOptions, type NatsConnection } from '@nats-io/transport-node'
import Fastify, { type FastifyBaseLogger } from 'fastify'
import fc from 'fast-check'
import t, { type Test } from 'tap'
import { channelToSubject, natsBackplane, subjectToChannel, type NatsBackplane } from '../../lib/nats/index.js'
import { startNats, type NatsServer } from '../helpers/nats.js'
import { within } from './contract.js'

async function client (t: Test, url: string, options: ConnectionOptions = {}): Promise<NatsConnection> {
  const nc = await connect({ ...options, servers: url })
  t.teardown(async () => { if (!nc.isClosed()) await nc.close() })
  return nc
}

/** Resolves with the next `count` payloads `take` receives (as strings). */
function collector (): { take: (payload: Buffer) => void, got: string[], next: (count: number) => Promise<void> } {
  const got: string[] = []
  const waiters: Array<{ count: number, resolve: () => void }> = []
  return {
    got,
    take (payload) {
      got.push(payload.toString('utf8'))
      for (const w of [...waiters]) if (got.length >= w.count) { waiters.splice(waiters.indexOf(w), 1); w.resolve() }
    },
    next (count) {
      return new Promise((resolve) => { if (got.length >= count) resolve(); else waiters.push({ count, resolve }) })
    }
  }
}

t.test('channel names map to safe subjects, reversibly', async (t) => {
  const token = /^(%|[A-Za-z0-9_%-]+)$/
  fc.assert(fc.property(fc.string({ unit: 'grapheme' }), fc.constantFrom('signalr', 'app.v1'), (channel, prefix) => {
    const subject = channelToSubject(prefix, channel)
    const tokens = subject.slice(prefix.length + 1).split('.')
    return subject.startsWith(`${prefix}.`) && tokens.every((tk) => token.test(tk)) && subjectToChannel(prefix, subject) === channel
  }), { numRuns: 2000 })
  t.pass('2000 random Unicode channels: every token is [A-Za-z0-9_%-] (no `.`, `*`, `>`, whitespace, no empty token) and decodes back')
  t.equal(channelToSubject('signalr', 'chat:group:room-1'), 'signalr.chat.group.room-1', 'plain names stay readable, `:` becomes `.`')
  t.equal(channelToSubject('signalr', 'chat:group:a.b c*>'), 'signalr.chat.group.a%2Eb%20c%2A%3E')
  t.equal(channelToSubject('signalr', 'chat::x'), 'signalr.chat.%.x', 'an empty piece is a lone %')
  t.equal(channelToSubject('signalr', '%'), 'signalr.%25')
  t.not(channelToSubject('signalr', ''), channelToSubject('signalr', '%'))
  t.throws(() => natsBackplane({ nats: {} as NatsConnection }), /must be a connection/)
})

t.test('against a nats-server', async (t) => {
  const server = await startNats(t)

  t.test('options are checked', async (t) => {
    const nc = await client(t, server.url)
    for (const prefix of ['', 'a..b', 'a.*', 'a.>', 'has space', '.a']) {
      t.throws(() => natsBackplane({ nats: nc, prefix }), /prefix/, `prefix '${prefix}' is refused`)
    }
    t.throws(() => natsBackplane({ nats: nc, requestTimeout: 0 }), /requestTimeout/)
  })

  t.test('awkward channel names: each message reaches exactly its own channel, wildcards mean nothing', async (t) => {
    const nc = await client(t, server.url)
    const backplane = natsBackplane({ nats: nc, prefix: 'test.awkward' })
    t.teardown(() => backplane.close())
    const channels = ['a.b', 'a:b', 'a:*', 'a:>', 'a *', 'a', '', ':', 'a:', 'grüße 👋', 'x\ty', '%', '%25', 'a%2Eb']
    const seen = new Map<string, string[]>()
    for (const channel of channels) {
      const got: string[] = []
      seen.set(channel, got)
      await backplane.subscribe(channel, (payload) => { got.push(payload.toString('utf8')) })
    }
    // A second connection publishes, as another server would; then a marker on every channel orders the rest.
    const other = natsBackplane({ nats: await client(t, server.url), prefix: 'test.awkward' })
    t.teardown(() => other.close())
    for (const channel of channels) other.publish(channel, Buffer.from(`to ${channel}`))
    const markers = channels.map((channel) => other.publishCounted(channel, Buffer.from('marker')))
    t.same(await within(Promise.all(markers), 'the markers'), channels.map(() => 1), 'every channel has its one subscriber')
    for (const channel of channels) t.same(seen.get(channel), [`to ${channel}`, 'marker'], `'${channel}' got its own message only`)
    t.equal(other.stats.published, channels.length * 2)
    t.equal(backplane.stats.received, channels.length * 2)
    t.equal(other.stats.dropped, 0)
  })

  t.test('publishCounted: 0 when nobody is subscribed, 1 when someone has it', async (t) => {
    const subscriber = natsBackplane({ nats: await client(t, server.url) })
    const publisher = natsBackplane({ nats: await client(t, server.url) })
    t.teardown(() => Promise.all([subscriber.close(), publisher.close()]))
    t.equal(await publisher.publishCounted('hub:connection:nobody', Buffer.from('x')), 0, 'no responders means 0, at once')
    const c = collector()
    await subscriber.subscribe('hub:connection:someone', c.take)
    t.equal(await publisher.publishCounted('hub:connection:someone', Buffer.from('request')), 1)
    await within(c.next(1), 'the payload')
    t.same(c.got, ['request'], 'the subscriber got the payload once')
    // A second subscriber elsewhere: NATS reports the first acknowledgement only.
    const third = natsBackplane({ nats: await client(t, server.url) })
    t.teardown(() => third.close())
    const c3 = collector()
    await third.subscribe('hub:connection:someone', c3.take)
    t.equal(await publisher.publishCounted('hub:connection:someone', Buffer.from('both')), 1, 'at least one (NATS counts no further)')
    await within(Promise.all([c.next(2), c3.next(1)]), 'both subscribers')
    await subscriber.unsubscribe('hub:connection:someone')
    await third.unsubscribe('hub:connection:someone')
    t.equal(await publisher.publishCounted('hub:connection:someone', Buffer.from('late')), 0, 'after the last unsubscribe: 0 again')
  })

  t.test('close releases the subscriptions but leaves the connection to its owner', async (t) => {
    const nc = await client(t, server.url)
    const backplane = natsBackplane({ nats: nc })
    await backplane.subscribe('hub:bus', () => {})
    const probe = natsBackplane({ nats: await client(t, server.url) })
    t.teardown(() => probe.close())
    t.equal(await probe.publishCounted('hub:bus', Buffer.from('x')), 1)
    await backplane.close()
    t.equal(await probe.publishCounted('hub:bus', Buffer.from('x')), 0, 'nobody subscribed after close')
    t.equal(nc.isClosed(), false, 'the caller\'s connection is still open')
    await nc.flush()
    t.pass('and still usable')
  })

  t.test('a closed connection: publish drops and counts, publishCounted rejects, nothing throws', async (t) => {
    const nc = await client(t, server.url)
    const backplane = natsBackplane({ nats: nc })
    t.teardown(() => backplane.close())
    await nc.close()
    backplane.publish('hub:bus', Buffer.from('lost'))
    t.equal(backplane.stats.dropped, 1, 'counted as dropped')
    t.equal(backplane.stats.published, 0)
    await t.rejects(backplane.publishCounted('hub:bus', Buffer.from('x')), /not connected|closed/i)
  })
})

/** A Fastify logger at `warn` whose lines land in `lines`, for the backplane's `log` option. */
function capturedLog (lines: string[]): FastifyBaseLogger {
  const stream = new Writable({ write (chunk: Buffer, _encoding, callback) { lines.push(chunk.toString('utf8')); callback() } })
  return Fastify({ logger: { level: 'warn', stream } }).log
}

/** Publishes with `backplane` until it counts a drop: it has seen the connection go down. */
async function untilDropping (backplane: NatsBackplane): Promise<void> {
  await within(new Promise<void>((resolve) => {
    const timer = setInterval(() => {
      backplane.publish('hub:probe', Buffer.from('probe'))
      if (backplane.stats.dropped === 0) return
      clearInterval(timer)
      resolve()
    }, 20)
  }), 'the backplane to see the outage')
}

/** A private nats-server and a backplane on a connection that reconnects for ever, quickly. */
async function onRestartableServer (t: Test): Promise<{ server: NatsServer, backplane: NatsBackplane }> {
  const server = await startNats(t)
  const nc = await connect({ servers: server.url, maxReconnectAttempts: -1, reconnectTimeWait: 50 })
  t.teardown(() => nc.close())
  const backplane = natsBackplane({ nats: nc })
  t.teardown(() => backplane.close())
  return { server, backplane }
}

/** Starts a subscribe; `settled()` tells whether it has resolved or rejected yet. */
function watchedSubscribe (backplane: NatsBackplane, channel: string, take: (payload: Buffer) => void): { subscribed: Promise<void>, settled: () => boolean } {
  let done = false
  const subscribed = backplane.subscribe(channel, take)
  subscribed.then(() => { done = true }, () => { done = true })
  return { subscribed, settled: () => done }
}

/** Restarts `server`, waits for the pending `subscribed`, and returns a backplane on a second connection to probe with. */
async function restartWhilePending (t: Test, server: NatsServer, subscribed: Promise<void>): Promise<NatsBackplane> {
  await server.restart()
  await within(subscribed, 'the pending subscribe to resolve after the restart')
  const other = natsBackplane({ nats: await client(t, server.url) })
  t.teardown(() => other.close())
  return other
}

t.test('nats-server restarted on the same port', async (t) => {
  const { server, backplane } = await onRestartableServer(t)
  const before = collector()
  await backplane.subscribe('hub:before', before.take)

  await server.stop()
  await untilDropping(backplane)
  const during = collector()
  const { subscribed, settled } = watchedSubscribe(backplane, 'hub:during', during.take)
  await t.rejects(backplane.publishCounted('hub:before', Buffer.from('x')), /not connected/, 'a request during the outage rejects at once')
  t.equal(settled(), false, 'a subscribe during the outage waits for NATS')

  const other = await restartWhilePending(t, server, subscribed)
  t.pass('it resolves once nats.js has reconnected')
  t.equal(await other.publishCounted('hub:during', Buffer.from('to during')), 1, 'the channel subscribed during the outage has its subscriber')
  t.equal(await other.publishCounted('hub:before', Buffer.from('to before')), 1, 'the channel subscribed before it was resubscribed')
  await within(Promise.all([during.next(1), before.next(1)]), 'both payloads')
  t.same([during.got, before.got], [['to during'], ['to before']])
})

t.test('nats-server hangs while a subscribe waits for its confirmation, then dies and comes back', async (t) => {
  const { server, backplane } = await onRestartableServer(t)
  await server.freeze()
  const got = collector()
  const { subscribed, settled } = watchedSubscribe(backplane, 'hub:hung', got.take)
  // A few turns for nats.js to write the SUB and its PING; no PONG can come from a stopped process.
  for (let i = 0; i < 10; i++) await new Promise((resolve) => { setImmediate(resolve) })
  t.equal(settled(), false, 'the subscribe waits while the server does not answer')
  const other = await restartWhilePending(t, server, subscribed)
  t.pass('the confirmation lost with the dead connection is asked again after the reconnect')
  t.equal(await other.publishCounted('hub:hung', Buffer.from('after')), 1)
  await within(got.next(1), 'the payload')
})

t.test('a connection that gives up reconnecting ends a pending subscribe', async (t) => {
  const server = await startNats(t)
  const nc = await connect({ servers: server.url, maxReconnectAttempts: 2, reconnectTimeWait: 50 })
  t.teardown(async () => { if (!nc.isClosed()) await nc.close() })
  const backplane = natsBackplane({ nats: nc })
  t.teardown(() => backplane.close())
  await server.stop()
  await untilDropping(backplane)
  await t.rejects(within(backplane.subscribe('hub:late', () => {}), 'the subscribe to settle'), /NATS connection is closed/,
    'it rejects once nats.js closes the connection, instead of waiting forever')
  t.equal(nc.isClosed(), true)
  await backplane.unsubscribe('hub:late')
  t.pass('unsubscribing a channel of the closed connection resolves')
  await t.rejects(backplane.subscribe('hub:later', () => {}), /closed/i, 'so does a later subscribe, at once')
})

t.test('against a nats-server: edges of the backplane API', async (t) => {
  const server = await startNats(t)

  t.test('after close: subscribe rejects, unsubscribe of an unknown channel is a no-op', async (t) => {
    const backplane = natsBackplane({ nats: await client(t, server.url) })
    await backplane.unsubscribe('hub:never-subscribed')
    t.pass('unsubscribing a channel never subscribed resolves')
    await backplane.close()
    await t.rejects(backplane.subscribe('hub:bus', () => {}), /NATS backplane is closed/)
  })

  t.test('subscribing a channel again replaces its handler: one subscription, one delivery', async (t) => {
    const backplane = natsBackplane({ nats: await client(t, server.url) })
    const other = natsBackplane({ nats: await client(t, server.url) })
    t.teardown(() => Promise.all([backplane.close(), other.close()]))
    const first = collector()
    const second = collector()
    await backplane.subscribe('hub:again', first.take)
    await backplane.subscribe('hub:again', second.take)
    t.equal(await other.publishCounted('hub:again', Buffer.from('once')), 1)
    other.publish('hub:again', Buffer.from('twice'))
    t.equal(await other.publishCounted('hub:again', Buffer.from('marker')), 1)
    await within(second.next(3), 'the payloads')
    t.same(second.got, ['once', 'twice', 'marker'], 'the new handler gets each payload once')
    t.same(first.got, [], 'the replaced handler gets nothing')
    await backplane.unsubscribe('hub:again')
    t.equal(await other.publishCounted('hub:again', Buffer.from('x')), 0, 'one unsubscribe releases it')
  })

  t.test('a handler that throws is logged and the next messages still arrive', async (t) => {
    const lines: string[] = []
    const backplane = natsBackplane({ nats: await client(t, server.url), log: capturedLog(lines) })
    const other = natsBackplane({ nats: await client(t, server.url) })
    t.teardown(() => Promise.all([backplane.close(), other.close()]))
    const got = collector()
    await backplane.subscribe('hub:picky', (payload) => {
      if (payload.toString('utf8') === 'bad') throw new Error('cannot handle this one')
      got.take(payload)
    })
    other.publish('hub:picky', Buffer.from('bad'))
    other.publish('hub:picky', Buffer.from('good'))
    await within(got.next(1), 'the good payload')
    t.same(got.got, ['good'])
    t.equal(backplane.stats.received, 2)
    t.ok(lines.some((line) => line.includes('a message could not be handled') && line.includes('cannot handle this one')),
      'the failure is logged with its error')
  })

  t.test('a payload above the server\'s max_payload: publish drops it and says why, publishCounted rejects', async (t) => {
    const lines: string[] = []
    const nc = await client(t, server.url)
    const backplane = natsBackplane({ nats: nc, log: capturedLog(lines) })
    t.teardown(() => backplane.close())
    const huge = Buffer.alloc(nc.info!.max_payload + 1, 'x')
    backplane.publish('hub:bus', huge)
    t.same([backplane.stats.dropped, backplane.stats.published], [1, 0], 'counted as dropped, not as published')
    t.ok(lines.some((line) => line.includes('cannot publish') && line.includes('max_payload')), 'the warning carries the reason')
    await t.rejects(backplane.publishCounted('hub:bus', huge), /max_payload/)
    backplane.publish('hub:bus', Buffer.from('small'))
    t.equal(backplane.stats.published, 2, 'the connection is still usable (the failed request counted as published)')
  })

  t.test('publishCounted rejects when a subscriber never acknowledges', async (t) => {
    const nc = await client(t, server.url)
    const backplane = natsBackplane({ nats: nc, requestTimeout: 100 })
    t.teardown(() => backplane.close())
    // Another service on the subject: it gets the request and answers nothing.
    const silent = await client(t, server.url)
    silent.subscribe(backplane.subjectFor('hub:silent'), { callback: () => {} })
    await silent.flush()
    await t.rejects(within(backplane.publishCounted('hub:silent', Buffer.from('x')), 'the request to end'), /timeout/i)
  })
})

t.test('a subscription the NATS account may not make', async (t) => {
  const server = await startNats(t, `authorization {
  users = [{ user: app, password: secret, permissions: { subscribe: { deny: ["signalr.hub.denied.>"] } } }]
}`)
  const lines: string[] = []
  const account = { user: 'app', pass: 'secret' }
  const nc = await client(t, server.url, account)
  const backplane = natsBackplane({ nats: nc, log: capturedLog(lines) })
  const other = natsBackplane({ nats: await client(t, server.url, account) })
  t.teardown(() => Promise.all([backplane.close(), other.close()]))

  await t.rejects(backplane.subscribe('hub:denied:a', () => {}), /Permissions Violation/i,
    'subscribe rejects with the server\'s refusal instead of resolving to a subscription that receives nothing')
  t.ok(lines.some((line) => line.includes('subscription failed')), 'and the refusal is logged')
  await t.rejects(backplane.subscribe('hub:denied:a', () => {}), /Permissions Violation/i, 'asking again asks NATS again')
  const got = collector()
  await backplane.subscribe('hub:allowed', got.take)
  t.equal(await other.publishCounted('hub:allowed', Buffer.from('fine')), 1, 'other subjects still work')
  await within(got.next(1), 'the allowed payload')
  t.equal(nc.isClosed(), false, 'the connection stays open')
})
