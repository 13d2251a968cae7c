import { createRequire } from 'node:module'

const require = createRequire(import.meta.url)

/**
 * @aspnet/signalr 1.0 is a browser library: it takes WebSocket,
 * XMLHttpRequest and EventSource from the global scope and has no Node
 * fallback. These packages give it the same APIs in Node (a global that is
 * already there, such as Node 22's WebSocket, is kept).
 */
export function installBrowserGlobals (): void {
  const scope = globalThis as Record<string, unknown>
  scope.WebSocket ??= require('ws')
  scope.XMLHttpRequest ??= require('xhr2')
  scope.EventSource ??= require('eventsource')
}
