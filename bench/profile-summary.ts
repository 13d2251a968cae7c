/**
 * Where a server's time went, from the V8 profiles `npm run bench -- --cpu-prof`
 * leaves in bench/profiles/<scenario>-<server>-rep<n>/:
 *
 *   node --import tsx bench/profile-summary.ts bench/profiles/echo-1000-*\/*.cpuprofile
 *
 * Each busy sample is charged by its stack, walking from the leaf towards the
 * root: Node-internal and native frames go to the first frame above them that
 * belongs to a package or to fastify-signalr (dist/), except that the socket
 * write path (net's write functions, writeBuffer/writev, ws's Sender) is a
 * bucket of its own, whoever called it. Samples under connection setup (HTTP,
 * the upgrade) and teardown (close events) are counted apart, since they lie
 * outside the measured window; the shares are of the rest. The V8 profiler
 * samples wall time while the thread is busy, so a thread that the kernel
 * preempted counts where it stood: read shares, not microseconds.
 */
import { readFileSync } from 'node:fs'
import { basename, dirname } from 'node:path'

interface CallFrame { functionName: string, url: string }
interface ProfileNode { id: number, callFrame: CallFrame, children?: number[] }
interface Profile { nodes: ProfileNode[], samples: number[], timeDeltas: number[] }

const NODE_WRITE = /^(writeBuffer|writev|writeUtf8String|writeLatin1String|Socket\._write|Socket\._writev|Socket\._writeGeneric|writeGeneric|writevGeneric|handleWriteReq|createWriteWrap|afterWriteDispatched|Writable\.write|writeOrBuffer|_write|Writable\.uncork|Writable\.cork|clearBuffer|doWrite|onwrite|afterWrite|afterWriteTick)$/
const OUTSIDE_WINDOW = /handleUpgrade|negotiate|onUpgrade|parserOnHeaders|onParserExecute|onconnection|emitClose|socketOnClose|socketOnEnd/
const SOCKET_WRITE = 'socket write (Node + kernel)'

/** The bucket a package or project frame stands for; 'write' for ws's Sender; null for Node internals and natives. */
function layerOf (url: string): string | null {
  if (url.includes('/node_modules/ws/lib/sender')) return 'write'
  if (url.includes('/node_modules/ws/lib/receiver')) return 'ws: frame reading'
  if (url.includes('/node_modules/ws/')) return 'ws: other'
  if (url.includes('/node_modules/zod/')) return 'zod'
  if (url.includes('/node_modules/msgpackr/') || url.includes('/dist/protocol/')) return 'ours: protocol (reading, encoding; msgpackr included)'
  const ours = /\/dist\/(?:([^/]+)\/)?[^/]+$/.exec(url)
  if (ours !== null) return `ours: ${ours[1] ?? 'top level'}`
  if (url.includes('/fastify-signalr-bench/servers/')) return 'bench server script'
  const pkg = /\/node_modules\/((?:@[^/]+\/)?[^/]+)\//.exec(url)
  return pkg === null ? null : `package ${pkg[1]}`
}

function bucketOf (stack: CallFrame[]): string {
  const leaf = stack[0]!
  if (leaf.functionName === '(garbage collector)') return 'GC'
  if (stack.some((f) => OUTSIDE_WINDOW.test(f.functionName) || f.url.includes('_http_'))) return 'outside'
  let writing = false
  for (const frame of stack) {
    const layer = layerOf(frame.url)
    if (layer === 'write') {
      writing = true
      continue
    }
    if (layer !== null) return writing ? SOCKET_WRITE : layer
    if ((frame.url === '' || frame.url.startsWith('node:')) && NODE_WRITE.test(frame.functionName)) writing = true
  }
  if (writing) return SOCKET_WRITE
  if (stack.some((f) => f.functionName === 'onStreamRead')) return 'socket read (Node)'
  if (stack.some((f) => /^(processTicksAndRejections|runMicrotasks|processImmediate|listOnTimeout)$/.test(f.functionName))) return 'event loop (ticks, immediates, timers)'
  return leaf.url === '' ? `VM: ${leaf.functionName}` : `Node: ${leaf.url.split('/').slice(0, 3).join('/')}`
}

function summarize (file: string): string {
  const profile = JSON.parse(readFileSync(file, 'utf8')) as Profile
  const byId = new Map(profile.nodes.map((n) => [n.id, n]))
  const parentOf = new Map<number, number>()
  for (const node of profile.nodes) for (const child of node.children ?? []) parentOf.set(child, node.id)
  const selfTime = new Map<number, number>()
  profile.samples.forEach((id, i) => selfTime.set(id, (selfTime.get(id) ?? 0) + (profile.timeDeltas[i] ?? 0)))
  const buckets = new Map<string, number>()
  for (const [id, micros] of selfTime) {
    const stack: CallFrame[] = []
    for (let at: number | undefined = id; at !== undefined; at = parentOf.get(at)) stack.push(byId.get(at)!.callFrame)
    if (stack[0]!.functionName === '(idle)') continue
    const bucket = bucketOf(stack)
    buckets.set(bucket, (buckets.get(bucket) ?? 0) + micros)
  }
  const outside = buckets.get('outside') ?? 0
  buckets.delete('outside')
  const inWindow = [...buckets.values()].reduce((a, b) => a + b, 0)
  const lines = [`${basename(dirname(file))}: ${((inWindow + outside) / 1e6).toFixed(2)} s busy, ${(outside / (inWindow + outside) * 100).toFixed(1)} % of it connection setup and teardown (left out)`]
  const ours = [...buckets].filter(([bucket]) => bucket.startsWith('ours:')).reduce((sum, [, micros]) => sum + micros, 0)
  lines.push(`  ${(ours / inWindow * 100).toFixed(1).padStart(5)} %  fastify-signalr, every module (the "ours:" lines below, and those under 0.4 %)`)
  for (const [bucket, micros] of [...buckets].sort((a, b) => b[1] - a[1])) {
    const share = micros / inWindow
    if (share >= 0.004) lines.push(`  ${(share * 100).toFixed(1).padStart(5)} %  ${bucket}`)
  }
  return lines.join('\n')
}

const files = process.argv.slice(2)
if (files.length === 0) {
  process.stderr.write('usage: node --import tsx bench/profile-summary.ts <file.cpuprofile>...\n')
  process.exit(1)
}
for (const file of files) process.stdout.write(`${summarize(file)}\n`)
