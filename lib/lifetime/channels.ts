/**
 * How the scaled lifetime manager routes between servers.
 * - `targeted` (default): a channel per hub, group, user and connection; a
 *   server subscribes to a group, user or connection channel only while it has
 *   a local member, so it receives only what is meant for its connections.
 * - `hub`: the former design, one channel per hub that every server receives,
 *   decodes and filters. Kept as a benchmarking baseline only.
 */
export type BackplaneRouting = 'hub' | 'targeted'

export const ROUTINGS: readonly BackplaneRouting[] = ['hub', 'targeted']

/**
 * The channel names of one hub, in the spirit of ASP.NET's RedisChannels:
 * `<prefix><hub>:all`, `:group:<name>`, `:user:<id>`, `:connection:<id>`,
 * and `:internal:ack:<serverId>`, where each server (or emitter) receives the
 * answers to its requests. Names are used as they are: a backplane whose
 * names are restricted (NATS subjects) encodes them itself.
 */
export class HubChannels {
  readonly all: string
  private readonly base: string

  constructor (prefix: string, hubName: string) {
    this.base = `${prefix}${hubName}:`
    this.all = `${this.base}all`
  }

  group (name: string): string { return `${this.base}group:${name}` }
  user (id: string): string { return `${this.base}user:${id}` }
  connection (id: string): string { return `${this.base}connection:${id}` }
  ack (serverId: string): string { return `${this.base}internal:ack:${serverId}` }
}
