import type { FastifyInstance, HTTPMethods } from 'fastify'
import type { HubConnection, IHubProtocol } from '@microsoft/signalr'
import { codes, describeValue } from './errors.js'
import { InMemoryClientEnd } from './transports/in-memory.js'

/** Options of `app.signalr.inject(path, options)`. */
export interface InjectOptions {
  /** Request headers of negotiate and connect (what `hub.request.headers` shows), e.g. `authorization`. */
  headers?: Record<string, string>
  /** Query parameters added to the hub URL (what `hub.request.query` shows). */
  query?: Record<string, string>
  /**
   * Hub protocol. `'messagepack'` needs `@microsoft/signalr-protocol-msgpack`;
   * a custom protocol is the client's half of it (an `IHubProtocol`, as for
   * `withHubProtocol`). Default `'json'`.
   */
  protocol?: 'json' | 'messagepack' | IHubProtocol
}

/** No request of an injected connection leaves the process: this origin only makes the client's URLs absolute. */
const ORIGIN = 'http://localhost'

type SignalRModule = typeof import('@microsoft/signalr')

/** Node's resolution error (some loader hooks rethrow it without its code, keeping the message). */
function isNotFound (err: unknown, name: string): boolean {
  const { code, message } = err as { code?: string, message?: string }
  if (code === 'ERR_MODULE_NOT_FOUND' || code === 'MODULE_NOT_FOUND') return true
  return typeof message === 'string' && message.startsWith('Cannot find ') && message.includes(`'${name}'`)
}

/** The official client is an optional peer dependency: loaded on first use, with a clear error when absent. */
export async function loadOptional<T> (name: string, why: string): Promise<T> {
  try {
    return await import(name) as T
  } catch (err) {
    // Only absence is explained; a package that fails while loading reports its own error.
    if (!isNotFound(err, name)) throw err
    throw new codes.SIGNALR_ERR_INVALID_OPTION(`app.signalr.inject ${why}`, `npm install -D ${name}`)
  }
}

function pathOf (url: string): string {
  return url.startsWith(ORIGIN) ? url.slice(ORIGIN.length) : url
}

/**
 * `app.signalr.inject(path, options)`: an official client connected to the
 * hub at `path` through `app.inject` (negotiate and connect run the route's
 * hooks) and an in-memory transport. No socket, no port.
 */
export async function injectHub (app: FastifyInstance, path: string, options: InjectOptions = {}): Promise<HubConnection> {
  if (typeof path !== 'string' || !path.startsWith('/')) {
    throw new codes.SIGNALR_ERR_INVALID_OPTION('app.signalr.inject', `path must start with '/'; got ${describeValue(path)}`)
  }
  const signalr = await loadOptional<SignalRModule>('@microsoft/signalr', 'needs the official client')
  const headers = { ...options.headers }

  /** The client's HTTP calls (negotiate) become `app.inject` calls. */
  class InjectHttpClient extends signalr.HttpClient {
    async send (request: import('@microsoft/signalr').HttpRequest): Promise<import('@microsoft/signalr').HttpResponse> {
      const response = await app.inject({
        method: (request.method ?? 'GET') as HTTPMethods,
        url: pathOf(request.url ?? '/'),
        headers: { ...request.headers, ...headers },
        payload: typeof request.content === 'string' ? request.content : request.content === undefined ? undefined : Buffer.from(request.content)
      })
      // As the client's own HTTP clients do: a status outside 2xx is an HttpError.
      if (response.statusCode < 200 || response.statusCode > 299) throw new signalr.HttpError(response.statusMessage, response.statusCode)
      return new signalr.HttpResponse(response.statusCode, response.statusMessage, response.body)
    }
  }

  const transport = new InMemoryClientEnd(async (url, connectHeaders) => {
    const response = await app.inject({ method: 'GET', url: pathOf(url), headers: connectHeaders })
    return { statusCode: response.statusCode, body: response.body }
  }, headers)

  const query = options.query === undefined ? '' : new URLSearchParams(options.query).toString()
  const builder = new signalr.HubConnectionBuilder()
    .withUrl(ORIGIN + path + (query === '' ? '' : (path.includes('?') ? '&' : '?') + query), {
      transport: transport as unknown as import('@microsoft/signalr').ITransport,
      httpClient: new InjectHttpClient(),
      headers
    })
    .configureLogging(signalr.LogLevel.None)
  if (typeof options.protocol === 'object' && options.protocol !== null) {
    builder.withHubProtocol(options.protocol)
  } else if (options.protocol === 'messagepack') {
    const msgpack = await loadOptional<typeof import('@microsoft/signalr-protocol-msgpack')>('@microsoft/signalr-protocol-msgpack', "with protocol 'messagepack' needs the MessagePack protocol")
    builder.withHubProtocol(new msgpack.MessagePackHubProtocol())
  } else if (options.protocol !== undefined && options.protocol !== 'json') {
    throw new codes.SIGNALR_ERR_INVALID_OPTION('app.signalr.inject', `option "protocol" must be 'json', 'messagepack' or a client protocol object (IHubProtocol); got ${describeValue(options.protocol)}`)
  }
  const connection = builder.build()
  await connection.start()
  return connection
}
