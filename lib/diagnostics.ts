import { channel } from 'node:diagnostics_channel'

// Diagnostics channels (node:diagnostics_channel, as Fastify publishes its own)
// at the moments tests and tools want to observe without patching our classes.
// Publishing is guarded by `hasSubscribers`, so an unobserved channel costs one
// property read.

/** A connection starts waiting for its transport to drain (backpressure). Message: `{ connectionId }`. */
export const drainWaitChannel = channel('fastify-signalr.connection.drain-wait')

/** An HTTP transport (long polling, SSE) pauses its POST inbox while its connection is busy. Message: `{ inbound }`. */
export const inboundPauseChannel = channel('fastify-signalr.http.inbound.pause')

/** A POST answered or gone gives up its turn in (or its place in the queue of) the POST inbox. Message: `{ inbound }`. */
export const inboundLeaveChannel = channel('fastify-signalr.http.inbound.leave')

/** A long-polling GET found nothing to send and is held until data comes. Message: `{ transport }`. */
export const pollHeldChannel = channel('fastify-signalr.long-polling.poll-held')
