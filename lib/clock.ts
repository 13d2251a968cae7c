/**
 * The plugin's one clock, in milliseconds. Everything in lib/ that stamps or
 * compares times reads a `Clock` handed to it (the connection store's, by
 * default this one), so a test can drive time from one place.
 */
export type Clock = () => number

/** Reads the global Date at call time, so a test's Date mock is honoured. */
export function wallClock (): number {
  return Date.now()
}
