/** A promise with its resolve function, for tests that release a handler on cue. */
export interface Deferred<T> {
  promise: Promise<T>
  resolve (value: T): void
}

export function deferred<T = void> (): Deferred<T> {
  let resolve!: (value: T) => void
  const promise = new Promise<T>((_resolve) => { resolve = _resolve })
  return { promise, resolve }
}
