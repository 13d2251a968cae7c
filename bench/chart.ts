/**
 * The picture of bench/RESULTS.md: server CPU per operation for every
 * scenario and server, as a plain SVG written by hand (no plotting
 * dependency). One panel per scenario, each scaled to its own largest bar:
 * a connection setup costs tens of times a delivered message, and one shared
 * axis would flatten every other panel.
 *
 *   npm run bench:chart    redraws bench/cpu-per-message.svg from the newest
 *                          full or quick run in bench/results/
 */
import { readdirSync, readFileSync, writeFileSync } from 'node:fs'
import { dirname, join } from 'node:path'
import { fileURLToPath } from 'node:url'

export interface ChartRow {
  scenario: string
  label: string
  server: string
  serverUsPerOp: number | null
  vsWs: number | null
}

const benchDir = dirname(fileURLToPath(import.meta.url))
export const chartPath = join(benchDir, 'cpu-per-message.svg')

const COLORS = ['#8c8c8c', '#d9822b', '#2b6cb0', '#2f9e6e', '#9f3fbf', '#c53030']
const WIDTH = 820
const LABEL_W = 210
const BAR_AREA = 470
const BAR_H = 16
const BAR_GAP = 4
const TITLE_H = 24
const PANEL_GAP = 14

function escape (text: string): string {
  return text.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;')
}

function num (value: number): string {
  return value >= 100 ? value.toFixed(0) : value >= 10 ? value.toFixed(1) : value.toFixed(2)
}

/** The chart as SVG text; `serverLabel` names the servers, in legend order. */
export function cpuChartSvg (rows: ChartRow[], serverLabel: Record<string, string>, subtitle: string): string {
  const servers = Object.keys(serverLabel).filter((s) => rows.some((r) => r.server === s))
  const scenarios = [...new Map(rows.map((r) => [r.scenario, r.label])).entries()]
  const parts: string[] = []
  let y = 56
  for (const [scenario, label] of scenarios) {
    const mine = servers.map((s) => rows.find((r) => r.scenario === scenario && r.server === s))
    const max = Math.max(...mine.map((r) => r?.serverUsPerOp ?? 0), 1e-9)
    parts.push(`<text x="10" y="${y + 16}" class="scenario">${escape(label)}</text>`)
    y += TITLE_H
    mine.forEach((row, i) => {
      const server = servers[i]!
      const value = row?.serverUsPerOp ?? null
      const w = value === null ? 0 : Math.max(1, (value / max) * BAR_AREA)
      const ratio = row?.vsWs === null || row?.vsWs === undefined || server === 'ws' ? '' : ` (${row.vsWs.toFixed(2)}× raw ws)`
      parts.push(`<text x="${LABEL_W - 8}" y="${y + BAR_H - 4}" text-anchor="end">${escape(serverLabel[server]!)}</text>`)
      parts.push(`<rect x="${LABEL_W}" y="${y}" width="${w.toFixed(1)}" height="${BAR_H}" fill="${COLORS[i % COLORS.length]}"/>`)
      parts.push(`<text x="${(LABEL_W + w + 6).toFixed(1)}" y="${y + BAR_H - 4}">${value === null ? 'failed' : `${num(value)} µs${ratio}`}</text>`)
      y += BAR_H + BAR_GAP
    })
    y += PANEL_GAP
  }
  const height = y + 10
  return `<svg xmlns="http://www.w3.org/2000/svg" width="${WIDTH}" height="${height}" viewBox="0 0 ${WIDTH} ${height}" font-family="sans-serif" font-size="12">
<style>.title{font-size:15px;font-weight:bold}.scenario{font-weight:bold}.sub{fill:#555}</style>
<rect width="100%" height="100%" fill="#fff"/>
<text x="10" y="22" class="title">Server CPU per operation (µs; lower is better)</text>
<text x="10" y="42" class="sub">${escape(subtitle)}</text>
${parts.join('\n')}
</svg>
`
}

interface ResultsFile {
  mode: string
  machine: { date: string, nproc: number, node: string, loadAverage?: number[] }
  settings: { reps: number }
  summary: ChartRow[]
}

const LABELS: Record<string, string> = {
  ws: 'raw ws',
  socketio: 'Socket.IO 4',
  'signalr-json': 'fastify-signalr JSON',
  'signalr-msgpack': 'fastify-signalr MessagePack'
}

/** One line under the title: which run the figures come from. */
export function chartSubtitle (mode: string, date: string, node: string, nproc: number, reps: number): string {
  return `npm run bench${mode === 'full' ? '' : ':' + mode}, ${date.slice(0, 16).replace('T', ' ')} UTC, node ${node}, ${nproc} cores; ` +
    `each panel scaled to its largest bar; ${reps === 1 ? 'one repetition' : `medians over ${reps} repetitions`}`
}

export function writeChart (rows: ChartRow[], subtitle: string): void {
  writeFileSync(chartPath, cpuChartSvg(rows, LABELS, subtitle))
}

function main (): void {
  const dir = join(benchDir, 'results')
  const files = readdirSync(dir).filter((f) => /-(full|quick)\.json$/.test(f)).sort()
  const newest = files.at(-1)
  if (newest === undefined) throw new Error('no full or quick run in bench/results/: npm run bench:quick first')
  const data = JSON.parse(readFileSync(join(dir, newest), 'utf8')) as ResultsFile
  writeChart(data.summary, chartSubtitle(data.mode, data.machine.date, data.machine.node, data.machine.nproc, data.settings.reps))
  process.stderr.write(`wrote bench/cpu-per-message.svg from bench/results/${newest}\n`)
}

if (process.argv[1] !== undefined && fileURLToPath(import.meta.url) === process.argv[1]) main()
