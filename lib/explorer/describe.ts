import type { z } from 'zod'
import { clientArgs, schemaOf, type AsyncApiHub, type JsonSchema, type SchemaOverride } from '../hub/asyncapi.js'
import type { ClientMethodSpec } from '../hub/types.js'

/** One parameter of a hub method as the explorer's form sees it. */
export interface ParamDescription {
  /** `stream`: a client-to-server stream whose items follow `schema`. */
  readonly kind: 'value' | 'stream'
  readonly schema: JsonSchema
  /** The argument may be left out (zod accepts `undefined`). */
  readonly optional: boolean
}

export interface MethodDescription {
  readonly name: string
  readonly stream: boolean
  readonly params: readonly ParamDescription[]
  readonly returns: JsonSchema | null
}

export interface ClientMethodDescription {
  readonly name: string
  readonly args: readonly JsonSchema[]
  /** Set when the server may `invoke` it and await a client result. */
  readonly returns: JsonSchema | null
}

export interface HubDescription {
  readonly name: string
  readonly path: string
  readonly methods: readonly MethodDescription[]
  readonly client: readonly ClientMethodDescription[]
}

/**
 * zod's JSON Schema has nothing for dates and bytes (`unrepresentable: 'any'`
 * makes them `{}`); mark them so the form offers a date picker and a base64 box.
 * A custom schema counts as binary when it takes a Uint8Array and refuses a string.
 */
const markDatesAndBytes: SchemaOverride = (ctx) => {
  const schema = ctx.zodSchema as unknown as z.ZodType & { _zod: { def: { type: string } } }
  const type = schema._zod.def.type
  if (type === 'date') {
    Object.assign(ctx.jsonSchema, { type: 'string', format: 'date-time', 'x-signalr-kind': 'date' })
  } else if (type === 'custom' && schema.safeParse(new Uint8Array(0)).success && !schema.safeParse('').success) {
    Object.assign(ctx.jsonSchema, { type: 'string', contentEncoding: 'base64', 'x-signalr-kind': 'binary' })
  }
}

function describeSchema (schema: z.ZodType, io: 'input' | 'output'): JsonSchema {
  return schemaOf(schema, io, markDatesAndBytes)
}

/** Hubs, methods and argument schemas for the explorer page, from the same table the dispatcher uses. */
export function describeHubs (hubs: readonly AsyncApiHub[]): HubDescription[] {
  return hubs.map((hub) => {
    const seen = new Set<unknown>()
    const methods: MethodDescription[] = []
    for (const method of hub.table.values()) {
      if (seen.has(method)) continue // each method is in the table under two keys
      seen.add(method)
      const params: ParamDescription[] = []
      let wire = 0
      let upload = 0
      for (let i = 0; i < method.paramCount; i++) {
        if (method.streamPositions[upload] === i) {
          params.push({ kind: 'stream', schema: describeSchema(method.streamItemSchemas[upload]!, 'input'), optional: false })
          upload++
        } else {
          const schema = method.argSchemas[wire++]!
          params.push({ kind: 'value', schema: describeSchema(schema, 'input'), optional: schema.safeParse(undefined).success })
        }
      }
      methods.push({
        name: method.name,
        stream: method.stream,
        params,
        returns: method.returns === null ? null : describeSchema(method.returns, 'output')
      })
    }
    const client = Object.entries((hub.definition.client ?? {}) as Record<string, ClientMethodSpec>).map(([name, spec]) => {
      const returns = Array.isArray(spec) ? undefined : (spec as { returns?: z.ZodType }).returns
      return {
        name,
        args: clientArgs(spec).map((s) => describeSchema(s, 'output')),
        returns: returns === undefined ? null : describeSchema(returns, 'input')
      }
    })
    return { name: hub.name, path: hub.path, methods, client }
  })
}
