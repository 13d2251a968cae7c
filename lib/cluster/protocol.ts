/**
 * The IPC messages between a worker's backplane and the primary. Each carries
 * the `TAG` key, so an app's own IPC messages pass by untouched.
 *
 *   worker → primary  { [TAG]: 'sub' | 'unsub', id, channel }   answered by 'ack'
 *                     { [TAG]: 'pub', channel, payload }         relayed as 'msg'
 *                     { [TAG]: 'pubc', id, channel, payload }    relayed as 'msg', answered by 'ack' with the count
 *   primary → worker  { [TAG]: 'msg', channel, payload }
 *                     { [TAG]: 'ack', id, count }
 *
 * Payloads travel as Buffers under `serialization: 'advanced'` (which
 * `clusterPrimary()` sets up) and as base64 text over the default JSON channel.
 * A worker cannot ask Node which one its channel uses, so it sends base64 until
 * the first 'ack', whose empty `probe` Buffer arrives as a Buffer only over an
 * advanced channel.
 */
export const TAG = '__fastifySignalR'

export type ToPrimary =
  | { [TAG]: 'sub' | 'unsub', id: number, channel: string }
  | { [TAG]: 'pub', channel: string, payload: WirePayload }
  | { [TAG]: 'pubc', id: number, channel: string, payload: WirePayload }

export type ToWorker =
  | { [TAG]: 'msg', channel: string, payload: WirePayload }
  | { [TAG]: 'ack', id: number, count: number, probe?: WirePayload }

/** A Buffer (advanced serialization), base64 text (JSON), or a Buffer that went through JSON. */
export type WirePayload = Uint8Array | string | { type: 'Buffer', data: number[] }

export function isTagged (message: unknown): message is Record<string, unknown> & { [TAG]: string } {
  return message !== null && typeof message === 'object' && typeof (message as Record<string, unknown>)[TAG] === 'string'
}

export function toWire (payload: Buffer, advanced: boolean): WirePayload {
  return advanced ? payload : payload.toString('base64')
}

export function fromWire (payload: unknown): Buffer | null {
  if (typeof payload === 'string') return Buffer.from(payload, 'base64')
  if (payload instanceof Uint8Array) return Buffer.isBuffer(payload) ? payload : Buffer.from(payload.buffer, payload.byteOffset, payload.byteLength)
  const json = payload as { type?: unknown, data?: unknown } | null
  if (json !== null && typeof json === 'object' && json.type === 'Buffer' && Array.isArray(json.data)) return Buffer.from(json.data as number[])
  return null
}
