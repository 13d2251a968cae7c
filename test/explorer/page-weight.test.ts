/**
 * The explorer's own page (HTML, CSS, scripts) stays within 150 KB gzipped;
 * the official client's bundles, served next to it, are not counted.
 */
import { gzipSync } from 'node:zlib'
import Fastify from 'fastify'
import t from 'tap'
import signalr from '../../lib/index.js'

const BUDGET = 150 * 1024

t.test('page weight', async (t) => {
  const app = Fastify()
  t.teardown(() => app.close())
  await app.register(signalr, { explorer: { path: '/signalr' } })
  const page = await app.inject({ url: '/signalr', remoteAddress: '127.0.0.1' })
  // Every asset the page loads: <script src>, <link href>, and the modules app.js imports.
  const referenced = new Set([...page.body.matchAll(/(?:src|href)="\/signalr\/assets\/([^"]+)"/g)].map((m) => m[1]!))
  const queue = [...referenced]
  let total = gzipSync(page.body).length
  const sizes: Record<string, number> = { 'index.html': total }
  while (queue.length > 0) {
    const name = queue.shift()!
    const asset = await app.inject({ url: `/signalr/assets/${name}`, remoteAddress: '127.0.0.1' })
    t.equal(asset.statusCode, 200, name)
    for (const m of asset.body.matchAll(/from '\.\/([^']+)'/g)) {
      if (!referenced.has(m[1]!)) { referenced.add(m[1]!); queue.push(m[1]!) }
    }
    if (name.startsWith('signalr')) continue // the official client
    sizes[name] = gzipSync(asset.body).length
    total += sizes[name]
  }
  t.same([...referenced].sort(), ['app.js', 'explorer.css', 'form.js', 'monitor.js', 'signalr-protocol-msgpack.min.js', 'signalr.min.js'])
  t.comment(`gzipped: ${JSON.stringify(sizes)}; total ${(total / 1024).toFixed(1)} KB of ${BUDGET / 1024} KB`)
  t.ok(total <= BUDGET, `the page is ${(total / 1024).toFixed(1)} KB gzipped`)
})
