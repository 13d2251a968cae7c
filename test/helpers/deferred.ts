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

/**
 * Deferreds by key, each made on first use by whichever side comes first (the
 * hook that resolves it or the test that waits for it).
 */
export function deferredByKey<T = void> (): (key: string) => Deferred<T> {
  const byKey = new Map<string, Deferred<T>>()
  return (key) => {
    let d = byKey.get(key)
    if (d === undefined) byKey.set(key, d = deferred<T>())
    return d
  }
}
