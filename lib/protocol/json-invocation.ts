import type { InvocationMessage } from './messages.js'

/**
 * The JSON reader's short cut for the message nearly every record is: an
 * Invocation exactly as the official clients write it. The JavaScript client
 * writes `{"target":"T","arguments":[…],"invocationId":"7","type":1}` (no id
 * for `send`), the .NET client `{"type":1,"invocationId":"7","target":"T","arguments":[…]}`.
 *
 * A record of one of these shapes, with no escapes or control characters in
 * the id and target, is valid JSON exactly when its arguments are, and then
 * means exactly what the general reader makes of it: so only the arguments go
 * through JSON.parse (with the same poisoning guard), and no envelope object
 * is built just to be read once. Anything else (other key orders, extra keys,
 * whitespace, escapes, arguments that do not parse as an array) returns null
 * and the caller runs the general reader, which also produces every error text.
 * Only the platform's string search runs per character, never a JavaScript loop
 * over the arguments.
 */

const DOUBLE_QUOTE = 0x22
const BACKSLASH = 0x5c
const CLOSE_BRACE = 0x7d

const DOTNET_HEAD = '{"type":1,'
const DOTNET_ID = '"invocationId":"'
const DOTNET_TARGET = '"target":"'
const JS_HEAD = '{"target":"'
const ARGUMENTS = '","arguments":'
const JS_ID = ',"invocationId":"'
const JS_TAIL = ',"type":1}'

/**
 * The last target read (by any connection: reading is synchronous), reused
 * when the next record names it again, as most do, so that no new string is
 * made for it.
 */
let lastTarget = ''

/** `text` holds a plain JSON string body from `start` to `end`: no escape, no control character. */
function isPlain (text: string, start: number, end: number): boolean {
  for (let i = start; i < end; i++) {
    const c = text.charCodeAt(i)
    if (c < 0x20 || c === BACKSLASH) return false
  }
  return true
}

/** The target whose body is `text[start, end)`: the last one when it is the same, else a new plain one (null when not plain). */
function targetAt (text: string, start: number, end: number): string | null {
  const last = lastTarget
  if (last.length === end - start && last.length > 0 && text.startsWith(last, start)) return last
  if (start === end || !isPlain(text, start, end)) return null
  return (lastTarget = text.slice(start, end))
}

/** The id whose body is `text[start, end)`; undefined for "" (ASP.NET's non-blocking invocation); null when not plain. */
function idAt (text: string, start: number, end: number): string | undefined | null {
  if (start === end) return undefined
  return isPlain(text, start, end) ? text.slice(start, end) : null
}

/**
 * The Invocation in `text` when it has one of the clients' shapes and its
 * arguments parse as an array; null otherwise. `parse` is the reader's
 * poisoning-safe JSON.parse.
 */
export function readCommonInvocation (text: string, parse: (json: string) => unknown): InvocationMessage | null {
  let invocationId: string | undefined | null
  let target: string | null
  let argsStart: number
  let argsEnd: number
  if (text.startsWith(JS_HEAD)) {
    const targetEnd = text.indexOf('"', JS_HEAD.length)
    if (targetEnd === -1 || !text.startsWith(ARGUMENTS, targetEnd)) return null
    target = targetAt(text, JS_HEAD.length, targetEnd)
    argsStart = targetEnd + ARGUMENTS.length
    if (!text.endsWith(JS_TAIL)) return null
    argsEnd = text.length - JS_TAIL.length
    invocationId = undefined
    if (text.charCodeAt(argsEnd - 1) === DOUBLE_QUOTE) {
      // Arguments end with `]`, so a quote here closes the id.
      const idStart = text.lastIndexOf('"', argsEnd - 2) + 1
      if (idStart < argsStart + JS_ID.length || !text.startsWith(JS_ID, idStart - JS_ID.length)) return null
      invocationId = idAt(text, idStart, argsEnd - 1)
      argsEnd = idStart - JS_ID.length
    }
  } else if (text.startsWith(DOTNET_HEAD)) {
    let at = DOTNET_HEAD.length
    invocationId = undefined
    if (text.startsWith(DOTNET_ID, at)) {
      const idEnd = text.indexOf('"', at + DOTNET_ID.length)
      if (idEnd === -1 || text.charCodeAt(idEnd + 1) !== 0x2c /* , */) return null
      invocationId = idAt(text, at + DOTNET_ID.length, idEnd)
      at = idEnd + 2
    }
    if (!text.startsWith(DOTNET_TARGET, at)) return null
    const targetStart = at + DOTNET_TARGET.length
    const targetEnd = text.indexOf('"', targetStart)
    if (targetEnd === -1 || !text.startsWith(ARGUMENTS, targetEnd)) return null
    target = targetAt(text, targetStart, targetEnd)
    argsStart = targetEnd + ARGUMENTS.length
    if (text.charCodeAt(text.length - 1) !== CLOSE_BRACE) return null
    argsEnd = text.length - 1
  } else {
    return null
  }
  if (target === null || invocationId === null || argsEnd <= argsStart) return null
  let args: unknown
  try {
    args = parse(text.slice(argsStart, argsEnd))
  } catch {
    return null
  }
  if (!Array.isArray(args)) return null
  // The general reader's shape, so both paths hand the dispatcher objects of one hidden class.
  return { type: 1, invocationId, target, arguments: args, streamIds: undefined, headers: undefined }
}
