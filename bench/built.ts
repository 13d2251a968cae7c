/**
 * Benchmark servers run as users run the package: plain `node` on JavaScript
 * that imports the built output (dist/), never tsx on the TypeScript sources.
 *
 * The server sources (bench/servers/*.ts) import `../../lib/…` so that the
 * type-check sees them without a build; here each one is transpiled on its own
 * (TypeScript's transpileModule: no type-check, that is `npm run typecheck`'s
 * job) with those imports pointed at dist/, into a folder inside
 * node_modules/.cache so that their bare imports (fastify, zod, ws, …) resolve
 * from the project's node_modules and nothing generated lands in the tree.
 */
import { execFileSync } from 'node:child_process'
import { mkdirSync, readdirSync, readFileSync, statSync, writeFileSync } from 'node:fs'
import { dirname, join } from 'node:path'
import { fileURLToPath, pathToFileURL } from 'node:url'
import ts from 'typescript'

const benchDir = dirname(fileURLToPath(import.meta.url))
const rootDir = dirname(benchDir)
const distDir = join(rootDir, 'dist')
const outDir = join(rootDir, 'node_modules', '.cache', 'fastify-signalr-bench', 'servers')

/** Every file below `dir`, recursively (none when it does not exist). */
function filesUnder (dir: string): string[] {
  let entries
  try {
    entries = readdirSync(dir, { withFileTypes: true })
  } catch {
    return []
  }
  return entries.flatMap((e) => (e.isDirectory() ? filesUnder(join(dir, e.name)) : [join(dir, e.name)]))
}

/**
 * Runs `npm run build` unless every file of dist/ is newer than every source
 * it is built from, so that a benchmark never measures stale output.
 */
export function ensureFreshBuild (): void {
  const sources = [...filesUnder(join(rootDir, 'lib')), join(rootDir, 'tsconfig.json'), join(rootDir, 'tsconfig.build.json')]
  const built = filesUnder(distDir).filter((f) => f.endsWith('.js'))
  const newestSource = Math.max(...sources.map((f) => statSync(f).mtimeMs))
  const oldestBuilt = Math.min(...built.map((f) => statSync(f).mtimeMs))
  if (built.length > 0 && oldestBuilt > newestSource) return
  process.stderr.write('bench: dist/ is missing or older than lib/: npm run build\n')
  // The build's output goes to stderr: stdout belongs to the driver's table.
  execFileSync('npm', ['run', 'build'], { cwd: rootDir, stdio: ['ignore', process.stderr, process.stderr] })
}

/** `'../../lib/x.js'` → the file URL of dist/x.js; any other specifier is kept. */
function pointAtDist (source: string): string {
  const dist = pathToFileURL(distDir).href
  return source.replace(/(['"])\.\.\/\.\.\/lib\/([^'"]+)\1/g, (_m, quote: string, rest: string) => `${quote}${dist}/${rest}${quote}`)
}

/**
 * Builds the package if needed, then every bench/servers/*.ts into compiled
 * JavaScript on dist/. Returns the folder that holds `<name>.js`.
 */
export function buildServers (): string {
  ensureFreshBuild()
  mkdirSync(outDir, { recursive: true })
  // node_modules/ ends the search for a package.json scope: say ESM here.
  writeFileSync(join(outDir, 'package.json'), '{ "type": "module" }\n')
  const sourceDir = join(benchDir, 'servers')
  for (const name of readdirSync(sourceDir).filter((f) => f.endsWith('.ts'))) {
    const source = pointAtDist(readFileSync(join(sourceDir, name), 'utf8'))
    if (/['"]\.\.\/\.\.\/lib\//.test(source)) throw new Error(`bench/servers/${name}: an import of lib/ was not pointed at dist/`)
    const { outputText } = ts.transpileModule(source, {
      fileName: name,
      compilerOptions: { module: ts.ModuleKind.ESNext, target: ts.ScriptTarget.ES2022, verbatimModuleSyntax: true }
    })
    writeFileSync(join(outDir, name.replace(/\.ts$/, '.js')), outputText)
  }
  return outDir
}

/** The compiled script of server `name` (buildServers() must have run). */
export function serverScript (name: string): string {
  return join(outDir, `${name}.js`)
}
