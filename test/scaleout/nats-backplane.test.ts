// The NATS backplane on its own, against a private nats-server.
import { connect, type NatsConnection } from '@nats-io/transport-node'
import fc from 'fast-check'
import t, { type Test } from 'tap'
import { channelToSubject, natsBackplane, subjectToChannel } from '../../lib/nats/index.js'
import { startNats } from '../helpers/nats.js'
import { within } from './contract.js'

async function client (t: Test, url: string): Promise<NatsConnection> {
  const nc = await connect({ servers: url })
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
