/**
 * Who may open the explorer: `authorize` when given, otherwise loopback only,
 * for the page, its assets, its data route and its monitor hub alike.
 */
import Fastify, { type FastifyInstance } from 'fastify'
import t from 'tap'
import signalr, { type ExplorerOptions } from '../../lib/index.js'
import { isLoopback } from '../../lib/explorer/loopback.js'
import { chat } from '../../example-app/hubs/chat.js'

type Tap = typeof t

async function build (t: Pick<Tap, 'teardown'>, explorer: ExplorerOptions): Promise<FastifyInstance> {
  const app = Fastify()
  t.teardown(() => app.close())
  await app.register(signalr, { explorer })
  app.mapHub('/chathub', chat)
  await app.ready()
  return app
}

const ROUTES = [
  ['GET', '/signalr'],
  ['GET', '/signalr/assets/app.js'],
  ['GET', '/signalr/assets/signalr.min.js'],
  ['GET', '/signalr/api/hubs'],
  ['POST', '/signalr/monitor/negotiate?negotiateVersion=1']
] as const

t.test('isLoopback accepts this machine only', async (t) => {
  for (const address of ['127.0.0.1', '127.8.9.10', '::1', '::ffff:127.0.0.1', '0:0:0:0:0:0:0:1']) {
    t.equal(isLoopback(address), true, address)
  }
  for (const address of [undefined, '', '10.0.0.1', '192.168.1.2', '::ffff:10.0.0.1', '128.0.0.1', '::2', 'fe80::1', '127.0.0.1.evil', 'localhost']) {
    t.equal(isLoopback(address), false, String(address))
  }
})

t.test('without authorize: loopback requests are served, others get 403', async (t) => {
  const app = await build(t, { path: '/signalr' })
  for (const [method, url] of ROUTES) {
    const local = await app.inject({ method, url, remoteAddress: '127.0.0.1' })
    t.equal(local.statusCode, 200, `${method} ${url} from 127.0.0.1`)
    const mapped = await app.inject({ method, url, remoteAddress: '::ffff:127.0.0.1' })
    t.equal(mapped.statusCode, 200, `${method} ${url} from ::ffff:127.0.0.1`)
    const remote = await app.inject({ method, url, remoteAddress: '203.0.113.7' })
    t.equal(remote.statusCode, 403, `${method} ${url} from 203.0.113.7`)
    t.notMatch(remote.body, /chathub|SendMessage/, 'nothing about the hubs leaks')
  }
  // A forged header does not make a remote client local (trustProxy is off).
  const forged = await app.inject({ url: '/signalr/api/hubs', remoteAddress: '203.0.113.7', headers: { 'x-forwarded-for': '127.0.0.1' } })
  t.equal(forged.statusCode, 403)
  // The hubs themselves are not behind the explorer's rule.
  const hub = await app.inject({ method: 'POST', url: '/chathub/negotiate?negotiateVersion=1', remoteAddress: '203.0.113.7' })
  t.equal(hub.statusCode, 200)
})

t.test('authorize decides, and may be async', async (t) => {
  const seen: string[] = []
  const app = await build(t, {
    path: '/signalr',
    authorize: async (request) => {
      seen.push(request.url)
      return request.headers['x-role'] === 'admin'
    }
  })
  for (const [method, url] of ROUTES) {
    const refused = await app.inject({ method, url, remoteAddress: '127.0.0.1' })
    t.equal(refused.statusCode, 403, `${method} ${url}: authorize says no, even from loopback`)
    const allowed = await app.inject({ method, url, remoteAddress: '203.0.113.7', headers: { 'x-role': 'admin' } })
    t.equal(allowed.statusCode, 200, `${method} ${url}: authorize says yes, from anywhere`)
  }
  t.ok(seen.includes('/signalr/monitor/negotiate?negotiateVersion=1'), 'the monitor hub is behind authorize too')
})

t.test('the page, its assets and the data route', async (t) => {
  const app = await build(t, { path: '/tools/signalr/' })
  const page = await app.inject({ url: '/tools/signalr', remoteAddress: '127.0.0.1' })
  t.equal(page.statusCode, 200)
  t.match(page.headers['content-type'], /^text\/html/)
  t.match(page.headers['content-security-policy'], "script-src 'self'", 'no inline or third-party scripts')
  t.match(page.body, '<meta name="explorer-base" content="/tools/signalr">', 'a trailing slash in path is dropped')
  t.match(page.body, 'src="/tools/signalr/assets/signalr.min.js"')
  t.match(page.body, 'src="/tools/signalr/assets/signalr-protocol-msgpack.min.js"')
  t.notMatch(page.body, /https?:\/\//, 'nothing from another origin')
  t.equal((await app.inject({ url: '/tools/signalr/assets/..%2Fexplorer.ts', remoteAddress: '127.0.0.1' })).statusCode, 404)
  t.equal((await app.inject({ url: '/tools/signalr/assets/nope.js', remoteAddress: '127.0.0.1' })).statusCode, 404)

  const data = (await app.inject({ url: '/tools/signalr/api/hubs', remoteAddress: '127.0.0.1' })).json()
  t.same(data.hubs.map((h: { path: string }) => h.path), ['/chathub'], 'the monitor hub is not listed')
  t.equal(data.messagepack, true)
  t.equal(data.scaled, false)
  t.same(data.hubs[0].methods[0], {
    name: 'SendMessage',
    stream: false,
    params: [
      { kind: 'value', schema: { type: 'string', minLength: 1, maxLength: 100 }, optional: false },
      { kind: 'value', schema: { type: 'string', maxLength: 4000 }, optional: false }
    ],
    returns: null
  })
  t.same(data.hubs[0].client, [{ name: 'ReceiveMessage', args: [{ type: 'string' }, { type: 'string' }], returns: null }])
  const asyncapi = app.signalr.asyncapi() as { channels: Record<string, unknown> }
  t.same(Object.keys(asyncapi.channels), ['chat'], 'nor is it in the AsyncAPI document')
})

t.test('bad explorer options fail at register', async (t) => {
  for (const [explorer, message] of [
    [{ path: 'signalr' }, /option "explorer" must start with \//],
    [{}, /option "explorer"/],
    [{ path: '/x', authorize: true }, /option "explorer" must be a function/],
    [{ path: '/x', extra: 1 }, /option "explorer" has unknown key "extra"/]
  ] as const) {
    const app = Fastify()
    t.teardown(() => app.close())
    await t.rejects(async () => { await app.register(signalr, { explorer: explorer as unknown as ExplorerOptions }) }, { message }, JSON.stringify(explorer))
  }
})
