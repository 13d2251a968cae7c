import type { NatsConnection } from '@nats-io/transport-node'
import type { SignalRPluginOptions } from '../lib/index.js'
import { clusterBackplane, clusterPrimary, type ClusterPrimaryStats } from '../lib/cluster/index.js'
import { natsBackplane, type NatsBackplane } from '../lib/nats/index.js'
import type { Equal, Expect } from './helpers.js'

declare const nats: NatsConnection

// Both engines plug into the plugin's `backplane` option as they are.
const viaNats: SignalRPluginOptions = { backplane: natsBackplane({ nats, prefix: 'app.v1', requestTimeout: 2000 }) }
const viaCluster: SignalRPluginOptions = { backplane: clusterBackplane({ requestTimeout: 5000, maxPending: 100 }) }

type _subject = Expect<Equal<ReturnType<NatsBackplane['subjectFor']>, string>>
type _counted = Expect<Equal<ReturnType<NatsBackplane['publishCounted']>, Promise<number>>>
type _stats = Expect<Equal<ReturnType<typeof clusterPrimary>['stats'], ClusterPrimaryStats>>

// @ts-expect-error: `nats` is required
natsBackplane({ prefix: 'x' })
// @ts-expect-error: an ioredis-like object is not a NATS connection
natsBackplane({ nats: { publish () {} } })
// @ts-expect-error: the prefix is a string
natsBackplane({ nats, prefix: 1 })
// @ts-expect-error: clusterPrimary's options are not the worker's
clusterPrimary({ requestTimeout: 1 })

export { viaNats, viaCluster }
