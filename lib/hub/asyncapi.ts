import { z } from 'zod'
import type { MethodTable } from './method-table.js'
import type { AnyHubDefinition, ClientMethodSpec } from './types.js'

/** One mapped hub, as the document describes it. */
export interface AsyncApiHub {
  readonly name: string
  readonly path: string
  readonly definition: AnyHubDefinition
  readonly table: MethodTable
}

export interface AsyncApiInfo {
  title?: string
  version?: string
  description?: string
}

export type JsonSchema = Record<string, unknown>

/** Lets a caller refine what zod emits for a schema (the explorer marks dates and binary). */
export type SchemaOverride = NonNullable<Parameters<typeof z.toJSONSchema>[1]>['override']

export function schemaOf (schema: z.ZodType, io: 'input' | 'output', override?: SchemaOverride): JsonSchema {
  // Transforms, dates and the like have no JSON Schema; describe them loosely instead of failing.
  const json = z.toJSONSchema(schema, { io, unrepresentable: 'any', ...(override !== undefined ? { override } : {}) }) as JsonSchema
  delete json.$schema
  return json
}

/** Positional arguments as a tuple schema: that is how SignalR sends them. */
function tupleOf (schemas: readonly z.ZodType[], io: 'input' | 'output'): JsonSchema {
  return { type: 'array', prefixItems: schemas.map((s) => schemaOf(s, io)), items: false, minItems: schemas.length }
}

export function clientArgs (spec: ClientMethodSpec): readonly z.ZodType[] {
  return Array.isArray(spec) ? spec : (spec as { args: readonly z.ZodType[] }).args
}

/**
 * An AsyncAPI 3.0 document from the hub definitions: per hub a channel at its
 * path, a `receive` operation per hub method (arguments, result, stream items)
 * and a `send` operation per client method, with zod 4's JSON Schema output.
 */
export function buildAsyncApi (hubs: readonly AsyncApiHub[], info: AsyncApiInfo = {}): Record<string, unknown> {
  const channels: Record<string, unknown> = {}
  const operations: Record<string, unknown> = {}
  const messages: Record<string, unknown> = {}
  for (const hub of hubs) {
    const channelId = hub.name.replace(/[^A-Za-z0-9_.-]/g, '_') || 'hub'
    const channelMessages: Record<string, unknown> = {}
    const seen = new Set<unknown>()
    for (const method of hub.table.values()) {
      if (seen.has(method)) continue // the table holds each method under two keys
      seen.add(method)
      const id = `${channelId}.${method.name}`
      const message: Record<string, unknown> = {
        name: method.name,
        title: `${method.name}${method.stream ? ' (stream)' : ''}`,
        payload: tupleOf(method.argSchemas, 'input'),
        'x-signalr-invocation': method.stream ? 'stream' : 'invoke'
      }
      if (method.streamItemSchemas.length > 0) {
        message['x-signalr-client-streams'] = method.streamItemSchemas.map((s) => schemaOf(s, 'input'))
      }
      if (method.returns !== null) message['x-signalr-result'] = schemaOf(method.returns, 'output')
      messages[id] = message
      channelMessages[method.name] = { $ref: `#/components/messages/${id}` }
      operations[id] = {
        action: 'receive',
        channel: { $ref: `#/channels/${channelId}` },
        messages: [{ $ref: `#/channels/${channelId}/messages/${method.name}` }],
        summary: `Hub method ${method.name}`
      }
    }
    for (const [name, spec] of Object.entries((hub.definition.client ?? {}) as Record<string, ClientMethodSpec>)) {
      const id = `${channelId}.client.${name}`
      const message: Record<string, unknown> = { name, payload: tupleOf(clientArgs(spec), 'output') }
      const returns = Array.isArray(spec) ? undefined : (spec as { returns?: z.ZodType }).returns
      if (returns !== undefined) message['x-signalr-result'] = schemaOf(returns, 'input')
      messages[id] = message
      channelMessages[`client.${name}`] = { $ref: `#/components/messages/${id}` }
      operations[id] = {
        action: 'send',
        channel: { $ref: `#/channels/${channelId}` },
        messages: [{ $ref: `#/channels/${channelId}/messages/client.${name}` }],
        summary: `Client method ${name}`
      }
    }
    channels[channelId] = { address: hub.path, title: hub.name, messages: channelMessages }
  }
  return {
    asyncapi: '3.0.0',
    info: {
      title: info.title ?? 'SignalR hubs',
      version: info.version ?? '1.0.0',
      ...(info.description !== undefined ? { description: info.description } : {})
    },
    defaultContentType: 'application/json',
    channels,
    operations,
    components: { messages }
  }
}
