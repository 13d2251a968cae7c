import { createNatsBackplane, type NatsBackplane, type NatsBackplaneOptions } from './nats-backplane.js'
import { checkSubjectPrefix } from './subjects.js'

export type { NatsBackplane, NatsBackplaneOptions } from './nats-backplane.js'
export { channelToSubject, subjectToChannel } from './subjects.js'
export { createHubEmitter } from '../emitter/index.js'
export type { HubEmitter, HubEmitterOptions } from '../emitter/index.js'

/**
 * Scale-out over NATS core: each channel is a subject, so NATS delivers a
 * message only to the servers subscribed to it.
 *
 * @example
 * import { connect } from '@nats-io/transport-node'
 * const nats = await connect({ servers: process.env.NATS_URL })
 * await app.register(signalr, { backplane: natsBackplane({ nats }) })
 * app.addHook('onClose', () => nats.drain())
 */
export function natsBackplane (options: NatsBackplaneOptions): NatsBackplane {
  if (options === null || typeof options !== 'object') throw new TypeError('natsBackplane: options are required')
  const nats = options.nats as Partial<NatsBackplaneOptions['nats']> | null
  if (nats === null || typeof nats !== 'object' || typeof nats.publish !== 'function' || typeof nats.subscribe !== 'function' ||
    typeof nats.request !== 'function' || typeof nats.status !== 'function') {
    throw new TypeError('natsBackplane: `nats` must be a connection from @nats-io/transport-node connect()')
  }
  if (options.prefix !== undefined && typeof options.prefix !== 'string') {
    throw new TypeError('natsBackplane: `prefix` must be a string')
  }
  const prefix = options.prefix ?? 'signalr'
  checkSubjectPrefix(prefix)
  if (options.requestTimeout !== undefined && !(Number.isInteger(options.requestTimeout) && options.requestTimeout > 0)) {
    throw new TypeError('natsBackplane: `requestTimeout` must be a positive integer (ms)')
  }
  return createNatsBackplane(options.nats, { ...options, prefix })
}
