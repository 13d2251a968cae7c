import type { z } from 'zod'
import { errorText, HubError, withDetail } from '../errors.js'
import { InvocationContext } from '../hub/caller-context.js'
import type { InvocationTarget } from './invocation-target.js'
import { findMethod, type MethodDescriptor } from '../hub/method-table.js'
import {
  MessageType, type HubMessage, type InvocationMessage, type StreamInvocationMessage
} from '../protocol/messages.js'
import { ProtocolError } from '../protocol/protocol-error.js'
import { exceedsDepth, tooDeepText } from '../protocol/values.js'
import { ClientStreamReader, toAsyncIterator } from './streams.js'
import { rateLimitText } from './rate-limit.js'

const NO_STREAM_IDS: readonly string[] = Object.freeze([])

/**
 * Takes one decoded message. Returns false when the message cannot be taken
 * yet (no free invocation slot, a full upload-stream buffer); the connection
 * then stops reading and offers the same message again once woken.
 */
export function dispatchMessage (connection: InvocationTarget, message: HubMessage): boolean {
  switch (message.type) {
    case MessageType.Invocation:
    case MessageType.StreamInvocation:
      return invoke(connection, message)
    case MessageType.StreamItem: {
      const reader = connection.streamsIn.get(message.invocationId)
      if (reader === undefined) return true // unknown stream ids are ignored, as in ASP.NET
      if (reader.isFull) return false
      const limit = connection.options.maximumMessageDepth
      if (exceedsDepth(message.item, limit)) reader.fail(new HubError(errorText.streamItemInvalid(tooDeepText(limit))))
      else reader.push(message.item)
      return true
    }
    case MessageType.Completion: {
      // Matched first against upload streams, then against pending client results.
      const reader = connection.streamsIn.get(message.invocationId)
      if (reader !== undefined) {
        connection.streamsIn.delete(message.invocationId)
        reader.complete(message.error)
        return true
      }
      const limit = connection.options.maximumMessageDepth
      if (message.hasResult && exceedsDepth(message.result, limit)) {
        // The hub method awaiting it gets the refusal; the value never reaches it.
        connection.clientResults.complete(message.invocationId, errorText.clientResultInvalid(tooDeepText(limit)), null)
      } else {
        connection.clientResults.complete(message.invocationId, message.error, message.hasResult ? message.result : null)
      }
      return true
    }
    case MessageType.CancelInvocation:
      connection.streamsOut.get(message.invocationId)?.abortSignal()
      return true
    case MessageType.Close:
      connection.onClientClose(message.error)
      return true
    default:
      // Ping only proves the client is alive (the transport already noted that); Ack and
      // Sequence belong to stateful reconnect and carry nothing for a plain connection.
      return true
  }
}

function sendError (connection: InvocationTarget, invocationId: string | undefined, error: string): void {
  // Nothing is ever sent back for a fire-and-forget invocation, whatever went wrong.
  if (invocationId === undefined) return
  connection.sendMessage({ type: MessageType.Completion, invocationId, error, hasResult: false })
}

function invoke (connection: InvocationTarget, message: InvocationMessage | StreamInvocationMessage): boolean {
  const streaming = message.type === MessageType.StreamInvocation
  const { invocationId, target } = message
  const method = findMethod(connection.runtime.table, target)
  if (connection.rateLimited && !withinRateLimit(connection, method, target, invocationId)) return true
  if (method === undefined) {
    sendError(connection, invocationId, errorText.methodNotFound(target))
    return true
  }
  const name = method.name
  if (method.stream !== streaming) {
    sendError(connection, invocationId, streaming ? errorText.nonStreamingWithStream(name) : errorText.streamingWithInvoke(name))
    return true
  }
  if (streaming && connection.streamsOut.has(invocationId!)) {
    sendError(connection, invocationId, errorText.idInUse(invocationId!))
    return true
  }
  const streamIds = message.streamIds ?? NO_STREAM_IDS
  if (streamIds.length !== method.streamPositions.length) {
    sendError(connection, invocationId,
      `${errorText.unexpected(name)} HubException: ${errorText.streamCount(streamIds.length, method.streamPositions.length)}`)
    return true
  }
  for (const id of streamIds) {
    if (connection.streamsIn.has(id)) {
      sendError(connection, invocationId, errorText.idInUse(id))
      return true
    }
  }
  const detailed = connection.options.enableDetailedErrors
  const args = message.arguments
  if (args.length !== method.wireArgCount) {
    sendError(connection, invocationId, withDetail(errorText.failedToInvoke(name),
      new ProtocolError(errorText.argumentCount(args.length, method.wireArgCount)), detailed))
    return true
  }

  // Streaming invocations do not count against maximumParallelInvocationsPerClient (as in ASP.NET).
  if (!streaming && !connection.limit.tryAcquire()) return false

  const params = bindArguments(connection, method, args, invocationId)
  if (params === null) {
    if (!streaming && connection.limit.release()) connection.unblock()
    return true
  }

  const context = new InvocationContext(connection, invocationId, !streaming)
  if (streamIds.length > 0) {
    context.streamIds = streamIds
    const positions = method.streamPositions
    for (let i = 0; i < streamIds.length; i++) {
      const reader = new ClientStreamReader(method.streamItemSchemas[i]!, connection.options.streamBufferCapacity, connection.wake)
      connection.streamsIn.set(streamIds[i]!, reader)
      params[positions[i]!] = reader
    }
  }
  if (streaming) connection.streamsOut.set(invocationId!, context)

  // Authorization and hooks make a call asynchronous; without them it stays on the fast path.
  if (method.authorize !== null || connection.runtime.definition.authorize !== undefined ||
    connection.runtime.hooks.guardsInvocations || connection.runtime.telemetry !== null) {
    void guardedInvoke(context, method, params, streaming)
    return true
  }

  let result: unknown
  try {
    result = callHandler(method.handler, context, params)
  } catch (err) {
    if (streaming) endStream(context, method, err)
    else completeInvocation(context, method, err, true)
    return true
  }
  if (streaming) {
    void pumpStream(context, method, result)
  } else if (result !== null && typeof result === 'object' && typeof (result as PromiseLike<unknown>).then === 'function') {
    void awaitResult(context, method, result as PromiseLike<unknown>)
  } else {
    completeInvocation(context, method, result, false)
  }
  return true
}

/**
 * The same call with `authorize` and the invocation hooks around it. A refusal
 * or a throwing `beforeInvocation` ends the call like a throwing handler would.
 */
async function guardedInvoke (context: InvocationContext, method: MethodDescriptor, params: unknown[], streaming: boolean): Promise<void> {
  const connection = context.connection
  const runtime = connection.runtime
  const fail = (err: unknown): void => {
    if (streaming) endStream(context, method, err)
    else completeInvocation(context, method, err, true)
  }
  try {
    const hubCheck = runtime.definition.authorize
    const allowed = (hubCheck === undefined || await hubCheck(context)) &&
      (method.authorize === null || await method.authorize(context))
    if (!allowed) {
      connection.streamsOut.delete(context.invocationId ?? '')
      releaseInvocation(context)
      sendError(connection, context.invocationId, errorText.unauthorized(method.name))
      return
    }
    await runtime.hooks.beforeInvocation({ hub: context, method: method.name, args: params })
  } catch (err) {
    fail(err)
    return
  }
  const started = performance.now()
  const telemetry = runtime.telemetry
  const span = telemetry?.invocationStarted(runtime.name, method.name, connection.connectionId, connection.telemetry) ?? null
  let result: unknown
  let error: unknown
  let failed = false
  try {
    result = callHandler(method.handler, context, params)
    if (streaming) {
      error = await pumpStream(context, method, result)
      failed = error !== undefined
    } else {
      result = await result
    }
  } catch (err) {
    error = err
    failed = true
  }
  const durationMs = performance.now() - started
  if (span !== null) telemetry!.invocationEnded(span, runtime.name, method.name, durationMs, failed ? error : undefined)
  try {
    await runtime.hooks.afterInvocation({
      hub: context, method: method.name, args: params, result: failed ? undefined : result, error, durationMs
    })
  } catch (err) {
    connection.log.error({ err, method: method.name }, 'afterInvocation hook failed')
  }
  if (streaming) {
    // pumpStream has completed the stream; only a handler that threw before streaming is left.
    if (failed && connection.streamsOut.has(context.invocationId!)) endStream(context, method, error)
    return
  }
  completeInvocation(context, method, failed ? error : result, failed)
}

/** Counts the call against the connection's and the method's limits; false after answering a refusal. */
function withinRateLimit (connection: InvocationTarget, method: MethodDescriptor | undefined, target: string, invocationId: string | undefined): boolean {
  const now = connection.clock()
  let verdict = connection.rateCounter?.take(now) ?? 'ok'
  let limit = connection.options.rateLimit
  if (verdict === 'ok' && method !== undefined && method.rateLimit !== null) {
    verdict = connection.methodRateCounter(method).take(now)
    limit = method.rateLimit
    // closeAfter counts every refusal of the connection, the method's included.
    if (verdict !== 'ok' && connection.rateCounter !== null) verdict = connection.rateCounter.refuse(now)
  }
  if (verdict === 'ok') return true
  if (verdict === 'close') {
    connection.log.warn({ method: target }, 'closing a connection that keeps calling over its rate limit')
    connection.closeWithError(new Error(`Rate limit exceeded too often (${target}).`))
    return false
  }
  sendError(connection, invocationId, rateLimitText(limit!, method?.name ?? target))
  return false
}

/** Calls a handler without spreading for the common small arities. */
function callHandler (handler: (...args: any[]) => unknown, context: InvocationContext, params: unknown[]): unknown {
  switch (params.length) {
    case 0: return handler(context)
    case 1: return handler(context, params[0])
    case 2: return handler(context, params[0], params[1])
    case 3: return handler(context, params[0], params[1], params[2])
    default: return handler(context, ...params)
  }
}

/**
 * Validates the wire arguments against their schemas before the handler runs.
 * Returns the handler's parameters (upload-stream positions left for the
 * readers), or null after sending the error.
 */
function bindArguments (connection: InvocationTarget, method: MethodDescriptor, args: unknown[], invocationId: string | undefined): unknown[] | null {
  const positions = method.streamPositions
  // Without upload streams the parameters are the wire arguments, validated: the
  // array is this invocation's own (fresh from the reader), so it is reused.
  const params = positions.length === 0 ? args : new Array<unknown>(method.paramCount)
  const schemas = method.argSchemas
  const depthLimit = connection.options.maximumMessageDepth
  let wire = 0
  let nextStream = 0
  for (let i = 0; i < method.paramCount; i++) {
    if (nextStream < positions.length && positions[nextStream] === i) {
      nextStream++
      continue
    }
    if (exceedsDepth(args[wire], depthLimit)) {
      // Checked before zod, whose recursion would otherwise walk the whole value.
      sendError(connection, invocationId,
        `${errorText.failedToInvoke(method.name)} InvalidDataException: ${errorText.binding(wire, tooDeepText(depthLimit))}`)
      return null
    }
    const parsed = schemas[wire]!.safeParse(args[wire])
    if (!parsed.success) {
      // Named method, position and zod reason, always: the caller needs them to fix the call.
      sendError(connection, invocationId,
        `${errorText.failedToInvoke(method.name)} InvalidDataException: ${errorText.binding(wire, describeIssues(parsed.error))}`)
      return null
    }
    params[i] = parsed.data
    wire++
  }
  return params
}

function describeIssues (error: z.ZodError): string {
  return error.issues.map((issue) => issue.path.length > 0 ? `${issue.path.join('.')}: ${issue.message}` : issue.message).join('; ')
}

async function awaitResult (context: InvocationContext, method: MethodDescriptor, pending: PromiseLike<unknown>): Promise<void> {
  let value: unknown
  try {
    value = await pending
  } catch (err) {
    completeInvocation(context, method, err, true)
    return
  }
  completeInvocation(context, method, value, false)
}

/** Sends the Completion of a non-streaming invocation and frees what it held. */
function completeInvocation (context: InvocationContext, method: MethodDescriptor, value: unknown, failed: boolean): void {
  const connection = context.connection
  const invocationId = context.invocationId
  releaseInvocation(context)
  if (connection.isClosed) return
  if (failed) {
    connection.log.debug({ err: value, method: method.name }, 'hub method failed')
    sendError(connection, invocationId, withDetail(errorText.unexpected(method.name), value, connection.options.enableDetailedErrors))
    return
  }
  if (invocationId === undefined) return
  let result = value === undefined ? null : value
  if (method.returns !== null) {
    const parsed = method.returns.safeParse(value)
    if (!parsed.success) {
      const err = new TypeError(`The result of '${method.name}' does not match its returns schema: ${describeIssues(parsed.error)}`)
      connection.log.error({ err }, 'hub method returned an invalid result')
      sendError(connection, invocationId, withDetail(errorText.unexpected(method.name), err, connection.options.enableDetailedErrors))
      return
    }
    result = parsed.data === undefined ? null : parsed.data
  }
  const protocol = connection.protocol!
  try {
    // Straight to bytes where the protocol can: no Completion object, no string concatenation.
    if (protocol.encodeResult !== undefined) connection.sendEncoded(protocol.encodeResult(invocationId, result))
    else connection.sendMessage({ type: MessageType.Completion, invocationId, hasResult: true, result })
  } catch (err) {
    // The result cannot be written (too deep, cyclic, ...): the caller gets an error instead.
    connection.log.error({ err, method: method.name }, 'the result of a hub method could not be serialized')
    sendError(connection, invocationId, withDetail(errorText.unexpected(method.name), err, connection.options.enableDetailedErrors))
  }
}

function releaseInvocation (context: InvocationContext): void {
  const connection = context.connection
  context.release()
  const streamIds = context.streamIds
  if (streamIds !== null) {
    // When the hub method ends, its upload streams end with it.
    for (const id of streamIds) {
      const reader = connection.streamsIn.get(id)
      if (reader !== undefined) {
        connection.streamsIn.delete(id)
        reader.complete(undefined)
      }
    }
    // A reader that was full may have blocked reading; it is gone now.
    connection.unblock()
  }
  if (context.holdsSlot) {
    context.holdsSlot = false
    if (connection.limit.release()) connection.unblock()
  }
}

/**
 * Writes a server-to-client stream: one StreamItem per value, then a
 * Completion without result (or with the error). Waits for the transport to
 * drain when the client reads slower than the producer yields.
 */
async function pumpStream (context: InvocationContext, method: MethodDescriptor, produced: unknown): Promise<unknown> {
  const connection = context.connection
  const invocationId = context.invocationId!
  let iterator: AsyncIterator<unknown> | Iterator<unknown> | null = null
  try {
    const source = produced !== null && typeof produced === 'object' && !(Symbol.asyncIterator in produced) &&
      typeof (produced as PromiseLike<unknown>).then === 'function'
      ? await produced
      : produced
    iterator = toAsyncIterator(source)
    if (iterator === null) {
      throw new TypeError(`The value returned by the streaming method '${method.name}' is not an AsyncIterable or Iterable.`)
    }
    while (!context.cancelled) {
      const step = await iterator.next()
      if (step.done === true || context.cancelled) break
      connection.sendMessage({ type: MessageType.StreamItem, invocationId, item: step.value })
      if (connection.shouldWait) await connection.waitForDrain()
    }
    if (context.cancelled) await iterator.return?.()
  } catch (err) {
    if (iterator !== null && !context.cancelled) {
      try { await iterator.return?.() } catch { /* the stream already failed */ }
    }
    endStream(context, method, err)
    return err
  }
  endStream(context, method, undefined)
  return undefined
}

function endStream (context: InvocationContext, method: MethodDescriptor, err: unknown): void {
  const connection = context.connection
  const invocationId = context.invocationId!
  connection.streamsOut.delete(invocationId)
  releaseInvocation(context)
  if (err === undefined) {
    connection.sendMessage({ type: MessageType.Completion, invocationId, hasResult: false })
    return
  }
  connection.log.debug({ err, method: method.name }, 'stream failed')
  connection.sendMessage({
    type: MessageType.Completion,
    invocationId,
    hasResult: false,
    error: withDetail(errorText.streamFailed, err, connection.options.enableDetailedErrors)
  })
}
