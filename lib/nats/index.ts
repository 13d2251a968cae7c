import { createNatsBackplane, type NatsBackplane, type NatsBackplaneOptions } from './nats-backplane.js'
import { checkSubjectPrefix } from './subjects.js'
import { codes, describeValue } from '../errors.js'

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
  if (options === null || typeof options !== 'object') throw new codes.SIGNALR_ERR_INVALID_OPTION('natsBackplane', `options are required; got ${describeValue(options)}`)
  const nats = options.nats as Partial<NatsBackplaneOptions['nats']> | null
  if (nats === null || typeof nats !== 'object' || typeof nats.publish !== 'function' || typeof nats.subscribe !== 'function' ||
    typeof nats.request !== 'function' || typeof nats.status !== 'function') {
    throw new codes.SIGNALR_ERR_INVALID_OPTION('natsBackplane', `option "nats" must be a connection from @nats-io/transport-node connect(); got ${describeValue(nats)}`)
  }
  if (options.prefix !== undefined && typeof options.prefix !== 'string') {
    throw new codes.SIGNALR_ERR_INVALID_OPTION('natsBackplane', `option "prefix" must be a string; got ${describeValue(options.prefix)}`)
  }
  const prefix = options.prefix ?? 'signalr'
  checkSubjectPrefix(prefix)
  if (options.requestTimeout !== undefined && !(Number.isInteger(options.requestTimeout) && options.requestTimeout > 0)) {
    throw new codes.SIGNALR_ERR_INVALID_OPTION('natsBackplane', `option "requestTimeout" must be a positive integer (ms); got ${describeValue(options.requestTimeout)}`)
  }
  return createNatsBackplane(options.nats, { ...options, prefix })
}
