import type { z } from 'zod'
import { codes } from '../errors.js'
import { kClientStream } from '../symbols.js'
import type { RateLimit } from '../dispatcher/rate-limit.js'
import { rateLimitSchema } from '../options.js'
import type { ClientStreamSchema } from './types.js'

/** Everything the dispatcher needs about one hub method, resolved once at definition time. */
export interface MethodDescriptor {
  /** The declared name (error texts echo it, as ASP.NET does for JSON). */
  readonly name: string
  readonly stream: boolean
  /** Arguments that travel in `arguments` (upload streams excluded). */
  readonly wireArgCount: number
  /** Schemas of the wire arguments, in wire order. */
  readonly argSchemas: readonly z.ZodType[]
  /** Where upload-stream readers go in the handler's parameter list, in `streamIds` order. */
  readonly streamPositions: readonly number[]
  readonly streamItemSchemas: readonly z.ZodType[]
  readonly returns: z.ZodType | null
  readonly authorize: ((hub: any) => boolean | Promise<boolean>) | null
  readonly rateLimit: RateLimit | null
  readonly handler: (...args: any[]) => unknown
  /** Parameters after `hub`: wire arguments plus upload streams. */
  readonly paramCount: number
}

/** Keyed by lower-cased name and by the declared name (both find the same descriptor). */
export type MethodTable = ReadonlyMap<string, MethodDescriptor>

export function findMethod (table: MethodTable, target: string): MethodDescriptor | undefined {
  return table.get(target) ?? table.get(target.toLowerCase())
}

export function isZodSchema (value: unknown): value is z.ZodType {
  return value !== null && typeof value === 'object' && typeof (value as z.ZodType).safeParse === 'function' &&
    '_zod' in value
}

export function isClientStream (value: unknown): value is ClientStreamSchema {
  return value !== null && typeof value === 'object' && (value as Record<symbol, unknown>)[kClientStream] === true
}

function invalid (message: string): never {
  throw new codes.SIGNALR_ERR_INVALID_HUB('defineHub', message)
}

/** Checks that no two names differ only by case: SignalR matches them case-insensitively. */
export function assertNoCaseDuplicates (names: Iterable<string>, what: string): void {
  const seen = new Map<string, string>()
  for (const name of names) {
    const key = name.toLowerCase()
    const other = seen.get(key)
    if (other !== undefined) {
      invalid(`${what} '${other}' and '${name}' differ only by case; SignalR matches names case-insensitively`)
    }
    seen.set(key, name)
  }
}

export function buildMethodTable (methods: Record<string, unknown>): MethodTable {
  if (methods === null || typeof methods !== 'object') invalid('`methods` must be an object')
  assertNoCaseDuplicates(Object.keys(methods), 'methods')
  const table = new Map<string, MethodDescriptor>()
  for (const [name, def] of Object.entries(methods)) {
    if (name.length === 0) invalid('a method name must not be empty')
    if (def === null || typeof def !== 'object') invalid(`method '${name}' must be an object with args and handler`)
    const { args, returns, stream, handler, authorize, rateLimit } = def as Record<string, unknown>
    if (rateLimit !== undefined && !rateLimitSchema.safeParse(rateLimit).success) {
      invalid(`method '${name}': \`rateLimit\` must be { max, timeWindow } with positive integers`)
    }
    if (authorize !== undefined && typeof authorize !== 'function') invalid(`method '${name}': \`authorize\` must be a function`)
    if (!Array.isArray(args)) invalid(`method '${name}': \`args\` must be an array of zod schemas`)
    if (typeof handler !== 'function') invalid(`method '${name}': \`handler\` must be a function`)
    if (returns !== undefined && !isZodSchema(returns)) invalid(`method '${name}': \`returns\` must be a zod schema`)
    if (stream !== undefined && typeof stream !== 'boolean') invalid(`method '${name}': \`stream\` must be a boolean`)

    const argSchemas: z.ZodType[] = []
    const streamPositions: number[] = []
    const streamItemSchemas: z.ZodType[] = []
    args.forEach((arg: unknown, i: number) => {
      if (isClientStream(arg)) {
        streamPositions.push(i)
        streamItemSchemas.push(arg.item)
      } else if (isZodSchema(arg)) {
        argSchemas.push(arg)
      } else {
        invalid(`method '${name}': argument ${i} must be a zod schema or clientStream(schema)`)
      }
    })
    const descriptor: MethodDescriptor = Object.freeze({
      name,
      stream: stream === true,
      wireArgCount: argSchemas.length,
      argSchemas,
      streamPositions,
      streamItemSchemas,
      returns: (returns as z.ZodType | undefined) ?? null,
      authorize: (authorize as MethodDescriptor['authorize'] | undefined) ?? null,
      rateLimit: (rateLimit as RateLimit | undefined) ?? null,
      handler: handler as (...args: any[]) => unknown,
      paramCount: args.length
    })
    // Lookup is case-insensitive; the declared spelling is also a key so the
    // usual call (clients send the declared name) needs no toLowerCase().
    table.set(name.toLowerCase(), descriptor)
    table.set(name, descriptor)
  }
  return table
}
