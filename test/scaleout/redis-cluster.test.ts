// The selector contract on a real 3-master Redis 7 Cluster with sharded
// pub/sub, servers in child processes.
import { Redis } from 'ioredis'
import t from 'tap'
import { startRedisCluster } from '../helpers/redis.js'
import { spawnServers } from '../helpers/servers.js'
import { connectPeer, post, selectorContract, WS_JSON } from './contract.js'

t.test('three servers on a 3-master Redis Cluster', async (t) => {
  const cluster = await startRedisCluster(t)
  const env = { REDIS_CLUSTER: cluster.ports.join(',') }
  const servers = await spawnServers(t, cluster.ports[0]!, ['c0', 'c1', 'c2'], { env })

  selectorContract(t, servers)

  t.test('sharded pub/sub: a channel lives on the one master that owns its slot', async (t) => {
    const admins = cluster.ports.map((port) => new Redis({ port, host: '127.0.0.1' }))
    t.teardown(() => { for (const a of admins) a.disconnect() })
    const A = await connectPeer(t, servers, { name: 'A', server: 0, cell: WS_JSON })
    const groups = ['g-a', 'g-b', 'g-c', 'g-d', 'g-e', 'g-f']
    for (const group of groups) await post(servers[1]!, '/groups', { id: A.id, group, add: true })
    const channels = ['signalr:contract:all', `signalr:contract:connection:${A.id}`, ...groups.map((g) => `signalr:contract:group:${g}`)]
    const ranges = await admins[0]!.cluster('SLOTS') as unknown as Array<[number, number, [string, number, ...unknown[]]]>
    const ownerOf = (slot: number): number => cluster.ports.indexOf(ranges.find(([from, to]) => slot >= from && slot <= to)![2][1])
    const owners = new Set<number>()
    for (const channel of channels) {
      const slot = await admins[0]!.cluster('KEYSLOT', channel)
      const where: number[] = []
      for (let i = 0; i < admins.length; i++) {
        const sharded = await admins[i]!.call('PUBSUB', 'SHARDCHANNELS', channel) as string[]
        if (sharded.includes(channel)) where.push(i)
      }
      t.same(where, [ownerOf(slot)], `${channel} (slot ${slot}) is subscribed on exactly one master, the one that owns its slot`)
      owners.add(where[0]!)
    }
    t.ok(owners.size > 1, `the hub's channels spread over ${owners.size} masters`)
    for (const admin of admins) t.same(await admin.call('PUBSUB', 'CHANNELS') as string[], [], 'no classic (cluster-wide) channel is used')
  })
})
