/**
 * The package as a user gets it: `npm pack` (whose prepack builds dist/ from
 * nothing), the tarball checked by publint and attw, then installed from the
 * npm registry into fresh projects (ESM with node16 resolution, ESM with
 * bundler resolution, CommonJS with nodenext) next to the oldest fastify and
 * zod minors our peer ranges allow. There the README's marked snippets
 * type-check, every entry point in package.json `exports` loads (import and
 * require), and the quick start runs against the official client.
 */
import t, { type Test } from 'tap'
import { spawn } from 'node:child_process'
import { mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { createRequire } from 'node:module'
import { tmpdir } from 'node:os'
import { dirname, join, relative } from 'node:path'
import { fileURLToPath } from 'node:url'
import { CONSUMER_KINDS, installedCopies, lowestMinor, npmInstall, ourVersion, run, writeConsumer, type ConsumerKind } from './consumers.js'
import { readmeSnippets, relativeLinks } from './readme-snippets.js'

// Packing, five installs and three compilations on a shared machine; a bound, not a wait.
t.setTimeout(600_000)

const ROOT = fileURLToPath(new URL('../..', import.meta.url))
const TSC = createRequire(import.meta.url).resolve('typescript/bin/tsc')
/** A devDependency's command. */
const BIN = (name: string): string => join(ROOT, 'node_modules', '.bin', name)
const NPM = process.platform === 'win32' ? 'npm.cmd' : 'npm'
/** Bound on the quick start server's start; a bound, not a wait. */
const START_TIMEOUT_MS = 60_000

interface Manifest {
  name: string
  exports: Record<string, string | Record<string, string>>
  peerDependencies: Record<string, string>
}
const manifest = JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8')) as Manifest

/** Every code entry point of `exports` (not ./package.json), as the specifier a user writes. */
const entryPoints = Object.entries(manifest.exports)
  .filter(([, target]) => typeof target === 'object')
  .map(([subpath, target]) => ({
    specifier: subpath === '.' ? manifest.name : manifest.name + subpath.slice(1),
    files: Object.values(target as Record<string, string>)
  }))

const work = mkdtempSync(join(tmpdir(), 'fastify-signalr-packaging-'))
t.teardown(() => { rmSync(work, { recursive: true, force: true }) })

// Pack exactly as `npm publish` would, then unpack to look inside.
const packDir = join(work, 'pack')
mkdirSync(packDir)
await run(NPM, ['pack', '--pack-destination', packDir, '--loglevel=error'], ROOT)
const tarball = join(packDir, readdirSync(packDir).find((file) => file.endsWith('.tgz'))!)
await run('tar', ['-xzf', tarball, '-C', packDir], work)
const unpacked = join(packDir, 'package')

function filesUnder (dir: string): string[] {
  return readdirSync(dir, { recursive: true, withFileTypes: true })
    .filter((entry) => entry.isFile())
    .map((entry) => relative(unpacked, join(entry.parentPath, entry.name)).split('\\').join('/'))
}
const shipped = new Set(filesUnder(unpacked))

const peers = {
  fastify: lowestMinor(manifest.peerDependencies.fastify!),
  zod: lowestMinor(manifest.peerDependencies.zod!)
}
// Every peer, optional ones too, so that every entry point can load: fastify
// and zod at their oldest minors, the others at the versions we test with.
const installSpecs = [
  tarball,
  ...Object.keys(manifest.peerDependencies).map((name) => `${name}@${name in peers ? peers[name as keyof typeof peers] : ourVersion(ROOT, name)}`),
  `@types/node@${ourVersion(ROOT, '@types/node')}`
]

const snippets = readmeSnippets(join(ROOT, 'README.md'))
const entryPointsSource = entryPoints.map((entry, i) => `import * as e${i} from '${entry.specifier}'\n`).join('') +
  `const loaded: Record<string, string[]> = {\n${entryPoints.map((entry, i) => `  '${entry.specifier}': Object.keys(e${i}),\n`).join('')}}\n` +
  'console.log(JSON.stringify(loaded))\n'
const requireSource = `'use strict'\nconst loaded = {}\n${entryPoints
  .map((entry) => `loaded['${entry.specifier}'] = Object.keys(require('${entry.specifier}'))\n`).join('')}console.log(JSON.stringify(loaded))\n`

function sourcesFor (kind: ConsumerKind): Record<string, string> {
  if (kind.type === 'commonjs') {
    return { 'consumer.ts': readFileSync(new URL('fixtures/cjs-consumer.ts', import.meta.url), 'utf8'), 'entrypoints.ts': entryPointsSource }
  }
  const sources: Record<string, string> = { 'entrypoints.ts': entryPointsSource }
  for (const snippet of snippets) {
    sources[snippet.mark === 'typecheck' ? `readme-line-${snippet.line}.ts` : `${snippet.mark}.ts`] = snippet.code
  }
  return sources
}

// Installs run side by side; the checks below wait for the one they need.
const consumers = new Map(CONSUMER_KINDS.map((kind) => {
  const dir = join(work, kind.name)
  writeConsumer(dir, kind, sourcesFor(kind))
  if (kind.type === 'commonjs') writeFileSync(join(dir, 'require-entrypoints.cjs'), requireSource)
  return [kind.name, { kind, dir, installed: npmInstall(dir, installSpecs) }]
}))
// A failed install is reported by the consumer's own subtest.
for (const { installed } of consumers.values()) installed.catch(() => {})

t.test('the tarball ships built code for every export, the sources its maps name, and no stale files', async (t) => {
  for (const entry of entryPoints) {
    for (const file of entry.files) t.ok(shipped.has(file.replace(/^\.\//, '')), `${entry.specifier}: ${file} is in the tarball`)
  }
  const maps = [...shipped].filter((file) => file.endsWith('.map'))
  t.ok(maps.length > 0, 'source maps are shipped')
  const missing = maps.flatMap((map) => (JSON.parse(readFileSync(join(unpacked, map), 'utf8')) as { sources: string[] }).sources
    .map((source) => relative(unpacked, join(unpacked, dirname(map), source)).split('\\').join('/'))
    .filter((source) => !shipped.has(source)))
  t.same(missing, [], `all sources named by the ${maps.length} maps are in the tarball`)
  // The explorer's browser scripts are copied from lib/explorer/assets/ as they are, not compiled.
  const stale = [...shipped].filter((file) => /^dist\/.*\.js$/.test(file) && !file.startsWith('dist/explorer/assets/') &&
    !shipped.has(file.replace(/^dist\//, 'lib/').replace(/\.js$/, '.ts')))
  t.same(stale, [], 'every dist/*.js comes from a lib/*.ts')
  for (const asset of ['index.html', 'explorer.css', 'app.js', 'form.js', 'monitor.js']) {
    t.ok(shipped.has(`dist/explorer/assets/${asset}`) && shipped.has(`lib/explorer/assets/${asset}`), `explorer asset ${asset} is shipped`)
  }
  t.notOk(shipped.has('test') || [...shipped].some((file) => file.startsWith('test/')), 'tests are not shipped')
})

t.test('the README has no relative links (they break on the registry page)', async (t) => {
  t.same(relativeLinks(readFileSync(join(ROOT, 'README.md'), 'utf8')), [])
  t.ok(snippets.some((s) => s.mark === 'quickstart-server') && snippets.some((s) => s.mark === 'quickstart-client'), 'the quick start is marked for the test')
})

t.test('publint and attw find nothing', async (t) => {
  const publint = await run(BIN('publint'), ['run', tarball, '--strict'], ROOT)
  t.match(publint, /All good!/, 'publint: no errors, warnings or suggestions')
  // --profile node16: node10 resolution ignores `exports`, so subpaths such as
  // fastify-signalr/redis cannot resolve there; the package needs Node >= 20.19 and
  // TypeScript's node16/nodenext/bundler resolution anyway.
  // --ignore-rules cjs-resolves-to-esm: by design. require() of this ESM-only
  // package works on Node >= 20.19 (no top-level await; the cjs-nodenext consumer
  // below proves it), and TypeScript >= 5.8 models it under nodenext; attw's
  // bundled TypeScript predates that and calls it "dynamic import only".
  await t.resolves(run(BIN('attw'), [tarball,
    '--profile', 'node16', '--ignore-rules', 'cjs-resolves-to-esm', '--format', 'ascii'], ROOT), 'attw: no problems')
})

for (const { kind, dir, installed } of consumers.values()) {
  t.test(`a fresh ${kind.name} project with fastify ${peers.fastify} and zod ${peers.zod}`, async (t) => {
    await installed
    for (const [name, range] of Object.entries(peers)) {
      const copies = installedCopies(dir, name)
      t.equal(copies.length, 1, `one copy of ${name}, the user's: ${copies.join(', ')}`)
      t.match(copies[0] ?? '', new RegExp(`@${range.slice(1).replace(/\.0$/, '').replace('.', '\\.')}\\.\\d+$`), `${name} is the ${range} the user installed`)
    }
    // The README snippets and the entry points type-check as this user writes them.
    await run(process.execPath, [TSC, '-p', dir], dir)
    t.pass('tsc passes')
    if (!kind.runs) return

    const imported = JSON.parse(await run(process.execPath, ['out/entrypoints.js'], dir)) as Record<string, string[]>
    for (const entry of entryPoints) t.ok((imported[entry.specifier] ?? []).length > 0, `${entry.specifier} loads and has exports`)
    if (kind.type === 'commonjs') {
      const required = JSON.parse(await run(process.execPath, ['require-entrypoints.cjs'], dir)) as Record<string, string[]>
      // Interop keys differ by design: tsc's __importStar adds `default` to a
      // namespace without one, and Node marks required ES modules `__esModule`.
      const named = (keys: string[] | undefined): string[] => (keys ?? []).filter((key) => key !== 'default' && key !== '__esModule').sort()
      for (const entry of entryPoints) {
        t.same(named(required[entry.specifier]), named(imported[entry.specifier]), `require('${entry.specifier}') has the same exports`)
      }
      t.ok(required[manifest.name]!.includes('default'), 'require() of the root has the plugin as `default`')
      t.equal((await run(process.execPath, ['out/consumer.js'], dir)).trim(), 'hello cjs', 'a CommonJS app serves a hub to the official client')
    } else {
      await runQuickStart(t, dir)
    }
  })
}

/** Starts the README's quick start server on a free port, runs its client against it, stops both. */
async function runQuickStart (t: Test, dir: string): Promise<void> {
  const server = readFileSync(join(dir, 'out/quickstart-server.js'), 'utf8')
  t.match(server, 'port: 3000', 'the quick start listens on port 3000; the test swaps in a free port')
  writeFileSync(join(dir, 'out/quickstart-server-run.js'), server.replace('port: 3000', 'port: 0'))

  const child = spawn(process.execPath, ['out/quickstart-server-run.js'], { cwd: dir, stdio: ['ignore', 'pipe', 'pipe'] })
  const exited = new Promise<void>((resolve) => { child.once('exit', () => { resolve() }) })
  t.teardown(async () => {
    if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL')
    await exited
  })
  let output = ''
  const port = await new Promise<number>((resolve, reject) => {
    const timer = setTimeout(() => { reject(new Error(`the quick start server did not listen within ${START_TIMEOUT_MS} ms: ${output}`)) }, START_TIMEOUT_MS)
    const onData = (chunk: Buffer): void => {
      output += chunk.toString()
      const match = /Server listening at http:\/\/(?:127\.0\.0\.1|localhost):(\d+)/.exec(output)
      if (match !== null) { clearTimeout(timer); resolve(Number(match[1])) }
    }
    child.stdout.on('data', onData)
    child.stderr.on('data', onData)
    void exited.then(() => { clearTimeout(timer); reject(new Error(`the quick start server exited: ${output}`)) })
  })

  const client = readFileSync(join(dir, 'out/quickstart-client.js'), 'utf8')
  t.match(client, '127.0.0.1:3000/', 'the quick start client connects to port 3000; the test swaps in the server\'s')
  // The README's client stays connected; stopping it lets the process end.
  writeFileSync(join(dir, 'out/quickstart-client-run.js'), client.replace('127.0.0.1:3000/', `127.0.0.1:${port}/`) + '\nawait connection.stop()\n')
  const printed = await run(process.execPath, ['out/quickstart-client-run.js'], dir)
  t.match(printed, /^ada: hello$/m, 'the client received its own message through the hub')

  child.kill('SIGTERM')
  await exited
  t.pass('the quick start server stopped')
}
