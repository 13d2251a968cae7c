import { readFile } from 'node:fs/promises'
import { createRequire } from 'node:module'
import { codes } from '../errors.js'

export interface Asset {
  readonly type: string
  readonly body: Buffer
}

/** The page's own files, next to this module in lib/ and in dist/ (the build copies them). */
const OWN: Record<string, string> = {
  'explorer.css': 'text/css; charset=utf-8',
  'app.js': 'text/javascript; charset=utf-8',
  'form.js': 'text/javascript; charset=utf-8',
  'monitor.js': 'text/javascript; charset=utf-8'
}

export interface ExplorerAssets {
  readonly html: string
  /** By file name, as served under `{path}/assets/`. */
  readonly files: ReadonlyMap<string, Asset>
  /** The MessagePack protocol's browser bundle is installed. */
  readonly messagepack: boolean
}

function resolveFrom (specifier: string): string | null {
  try {
    return createRequire(import.meta.url).resolve(specifier)
  } catch {
    return null
  }
}

/**
 * Reads the page and the official client's browser bundles once, at register.
 * `@microsoft/signalr` is an optional peer dependency: the explorer cannot work
 * without it, so its absence fails `register`; the MessagePack protocol is
 * offered only when `@microsoft/signalr-protocol-msgpack` is installed too.
 */
export async function loadExplorerAssets (): Promise<ExplorerAssets> {
  const signalrPath = resolveFrom('@microsoft/signalr/dist/browser/signalr.min.js')
  if (signalrPath === null) {
    throw new codes.SIGNALR_ERR_INVALID_OPTION('register', 'option "explorer" needs the official browser client: ' +
      'npm install @microsoft/signalr (and @microsoft/signalr-protocol-msgpack for MessagePack)')
  }
  const msgpackPath = resolveFrom('@microsoft/signalr-protocol-msgpack/dist/browser/signalr-protocol-msgpack.min.js')
  const here = new URL('./assets/', import.meta.url)
  const files = new Map<string, Asset>()
  const [html] = await Promise.all([
    readFile(new URL('index.html', here), 'utf8'),
    ...Object.entries(OWN).map(async ([name, type]) => {
      files.set(name, { type, body: await readFile(new URL(name, here)) })
    }),
    readFile(signalrPath).then((body) => files.set('signalr.min.js', { type: OWN['app.js']!, body })),
    msgpackPath === null
      ? undefined
      : readFile(msgpackPath).then((body) => files.set('signalr-protocol-msgpack.min.js', { type: OWN['app.js']!, body }))
  ])
  return { html, files, messagepack: msgpackPath !== null }
}
