import Fastify, { type FastifyRequest } from 'fastify'
import signalr, { type ExplorerOptions } from '../lib/index.js'
import type { Equal, Expect } from './helpers.js'

const app = Fastify()

await app.register(signalr, { explorer: { path: '/signalr' } })
await app.register(signalr, { explorer: { path: '/signalr', authorize: (request) => request.headers['x-role'] === 'admin' } })
await app.register(signalr, { explorer: { path: '/signalr', authorize: async () => true } })

type _request = Expect<Equal<Parameters<NonNullable<ExplorerOptions['authorize']>>[0], FastifyRequest>>

// @ts-expect-error path is required
await app.register(signalr, { explorer: { authorize: () => true } })
// @ts-expect-error authorize answers with a boolean
await app.register(signalr, { explorer: { path: '/signalr', authorize: () => 'yes' } })
