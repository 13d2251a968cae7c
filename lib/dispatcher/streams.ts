import type { z } from 'zod'
import { errorText, HubError } from '../errors.js'

/**
 * The AsyncIterable a hub method receives for a client-to-server stream. Items
 * are validated on arrival; at most `capacity` wait unread, and the connection
 * stops reading while the queue is full (`isFull`), so a fast uploader cannot
 * grow server memory.
 */
export class ClientStreamReader<T = unknown> implements AsyncIterable<T>, AsyncIterator<T> {
  private readonly items: unknown[] = []
  private head = 0
  private readonly capacity: number
  private readonly schema: z.ZodType
  private readonly onSpace: () => void
  private waiting: { resolve (r: IteratorResult<T>): void, reject (e: Error): void } | null = null
  private ended = false
  private error: Error | null = null

  constructor (schema: z.ZodType, capacity: number, onSpace: () => void) {
    this.schema = schema
    this.capacity = capacity
    this.onSpace = onSpace
  }

  get isFull (): boolean {
    return this.items.length - this.head >= this.capacity
  }

  /** A StreamItem arrived. An item that fails its schema fails the stream. */
  push (item: unknown): void {
    if (this.ended) return
    const parsed = this.schema.safeParse(item)
    if (!parsed.success) {
      this.fail(new HubError(errorText.streamItemInvalid(parsed.error.issues.map((i) => i.message).join('; '))))
      return
    }
    const waiter = this.waiting
    if (waiter !== null) {
      this.waiting = null
      waiter.resolve({ value: parsed.data as T, done: false })
      return
    }
    this.items.push(parsed.data)
  }

  /** The client completed the stream (with an error text when it failed). */
  complete (error: string | undefined): void {
    if (error !== undefined) this.fail(new HubError(error))
    else this.finish()
  }

  fail (error: Error): void {
    if (this.ended) return
    this.error = error
    this.finish()
  }

  private finish (): void {
    if (this.ended) return
    this.ended = true
    const waiter = this.waiting
    if (waiter !== null && this.head >= this.items.length) {
      this.waiting = null
      if (this.error !== null) waiter.reject(this.error)
      else waiter.resolve({ value: undefined, done: true })
    }
  }

  next (): Promise<IteratorResult<T>> {
    if (this.head < this.items.length) {
      const wasFull = this.isFull
      const value = this.items[this.head] as T
      this.items[this.head++] = undefined
      if (this.head === this.items.length) {
        this.items.length = 0
        this.head = 0
      }
      if (wasFull) this.onSpace()
      return Promise.resolve({ value, done: false })
    }
    if (this.ended) {
      if (this.error !== null) return Promise.reject(this.error)
      return Promise.resolve({ value: undefined, done: true })
    }
    return new Promise((resolve, reject) => { this.waiting = { resolve, reject } })
  }

  return (): Promise<IteratorResult<T>> {
    this.ended = true
    this.items.length = 0
    this.head = 0
    this.onSpace()
    return Promise.resolve({ value: undefined, done: true })
  }

  [Symbol.asyncIterator] (): AsyncIterator<T> {
    return this
  }
}

/** Accepts what a streaming handler returned: an AsyncIterable or a (non-string) Iterable. */
export function toAsyncIterator (value: unknown): AsyncIterator<unknown> | Iterator<unknown> | null {
  if (value === null || value === undefined || typeof value === 'string') return null
  const asyncIt = (value as AsyncIterable<unknown>)[Symbol.asyncIterator]
  if (typeof asyncIt === 'function') return asyncIt.call(value)
  const it = (value as Iterable<unknown>)[Symbol.iterator]
  if (typeof it === 'function') return it.call(value)
  return null
}
