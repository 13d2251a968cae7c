import { execFile } from 'node:child_process'
import { mkdirSync, readdirSync, readFileSync, writeFileSync, existsSync } from 'node:fs'
import { join } from 'node:path'
import { createRequire } from 'node:module'

const require = createRequire(import.meta.url)

/** Runs a command; rejects with its output when it exits non-zero, so the failure says why. */
export function run (file: string, args: string[], cwd: string, env: NodeJS.ProcessEnv = process.env): Promise<string> {
  return new Promise((resolve, reject) => {
    execFile(file, args, { cwd, env, maxBuffer: 64 * 1024 * 1024 }, (error, stdout, stderr) => {
      if (error === null) resolve(stdout)
      else reject(new Error(`${file} ${args.join(' ')} (in ${cwd}) failed: ${error.message}\n${stdout}\n${stderr}`))
    })
  })
}

/** One kind of user project: how its package.json and tsconfig.json look. */
export interface ConsumerKind {
  readonly name: string
  readonly type: 'module' | 'commonjs'
  readonly compilerOptions: Record<string, unknown>
  /** Whether tsc emits JavaScript that the test then runs with node. */
  readonly runs: boolean
}

const COMMON_OPTIONS = {
  target: 'ES2022',
  strict: true,
  // As `tsc --init` writes it, and most users have it; esm-node16 below checks our .d.ts files too.
  skipLibCheck: true,
  types: ['node']
}

export const CONSUMER_KINDS: readonly ConsumerKind[] = [
  // The strictest user: node16 resolution, and library checking on, so an error or an
  // unresolvable import inside our .d.ts files (against the oldest peers) fails here.
  { name: 'esm-node16', type: 'module', runs: true, compilerOptions: { ...COMMON_OPTIONS, skipLibCheck: false, module: 'node16', moduleResolution: 'node16', outDir: 'out' } },
  { name: 'esm-bundler', type: 'module', runs: false, compilerOptions: { ...COMMON_OPTIONS, module: 'preserve', moduleResolution: 'bundler', noEmit: true } },
  // CommonJS TypeScript: imports compile to require(), which loads our ESM synchronously on Node >= 20.19.
  { name: 'cjs-nodenext', type: 'commonjs', runs: true, compilerOptions: { ...COMMON_OPTIONS, module: 'nodenext', moduleResolution: 'nodenext', outDir: 'out' } }
]

/**
 * A peer range's lowest minor as an npm spec (`^5.6.0` → `~5.6.0`): consumers
 * get the oldest versions we claim to support, not the ones we develop with.
 */
export function lowestMinor (range: string): string {
  const match = /^\^(\d+)\.(\d+)\.\d+$/.exec(range)
  if (match === null) throw new Error(`peer range "${range}" is not of the form ^X.Y.Z`)
  return `~${match[1]}.${match[2]}.0`
}

/** The version of a package installed in our own node_modules, so consumer installs hit the npm cache. */
export function ourVersion (name: string): string {
  return (require(`${name}/package.json`) as { version: string }).version
}

/** Writes a fresh project: package.json, tsconfig.json and the given source files under src/. */
export function writeConsumer (dir: string, kind: ConsumerKind, sources: Record<string, string>): void {
  mkdirSync(join(dir, 'src'), { recursive: true })
  writeFileSync(join(dir, 'package.json'), JSON.stringify({ name: `consumer-${kind.name}`, private: true, type: kind.type }, null, 2))
  writeFileSync(join(dir, 'tsconfig.json'), JSON.stringify({ compilerOptions: { ...kind.compilerOptions, rootDir: 'src' }, include: ['src'] }, null, 2))
  for (const [file, text] of Object.entries(sources)) writeFileSync(join(dir, 'src', file), text)
}

/** npm install with the registry only and the shared cache, quietly. */
export function npmInstall (dir: string, specs: string[]): Promise<string> {
  const npm = process.platform === 'win32' ? 'npm.cmd' : 'npm'
  return run(npm, ['install', '--prefer-offline', '--no-audit', '--no-fund', '--no-package-lock', '--loglevel=error', ...specs], dir)
}

/** Every installed copy of a package under dir/node_modules (nested ones included), as `path@version`. */
export function installedCopies (dir: string, name: string): string[] {
  const found: string[] = []
  const walk = (modules: string): void => {
    if (!existsSync(modules)) return
    const manifest = join(modules, name, 'package.json')
    if (existsSync(manifest)) found.push(`${join(modules, name)}@${(JSON.parse(readFileSync(manifest, 'utf8')) as { version: string }).version}`)
    for (const entry of readdirSync(modules, { withFileTypes: true })) {
      if (!entry.isDirectory() || entry.name.startsWith('.')) continue
      const packages = entry.name.startsWith('@')
        ? readdirSync(join(modules, entry.name)).map((scoped) => join(modules, entry.name, scoped))
        : [join(modules, entry.name)]
      for (const pkg of packages) walk(join(pkg, 'node_modules'))
    }
  }
  walk(join(dir, 'node_modules'))
  return found
}
