/**
 * Scale-out over the cores of one machine, without Redis: `clusterPrimary()`
 * in the `node:cluster` primary, `clusterBackplane()` in each worker. With a
 * shared `connectionTokenSecret`, a WebSocket may open on another worker than
 * the one that answered negotiate, so no sticky sessions are needed.
 *
 * @example
 * if (cluster.isPrimary) {
 *   clusterPrimary()
 *   for (let i = 0; i < os.availableParallelism(); i++) cluster.fork()
 * } else {
 *   await app.register(signalr, { connectionTokenSecret: process.env.SIGNALR_SECRET, backplane: clusterBackplane() })
 *   await app.listen({ port: 3000 })
 * }
 */
export { clusterBackplane, type ClusterBackplane, type ClusterBackplaneOptions } from './worker.js'
export { clusterPrimary, type ClusterPrimary, type ClusterPrimaryOptions, type ClusterPrimaryStats } from './primary.js'
