/**
 * Compile-time assertions for the type tests. Nothing here runs: the files
 * under types/ are only type-checked (`tsc -p types/tsconfig.json`).
 */

/**
 * Strict type equality. The two generic function types are only mutually
 * assignable when A and B are identical, so `any` is not equal to `string`
 * and `string | undefined` is not equal to `string`.
 */
export type Equal<A, B> =
  (<T>() => T extends A ? 1 : 2) extends (<T>() => T extends B ? 1 : 2) ? true : false

/** Fails to compile unless T is exactly `true`. */
export type Expect<T extends true> = T

/** Fails to compile unless `value` is assignable to T (with T given explicitly). */
export function expectType<T> (value: T): T {
  return value
}
