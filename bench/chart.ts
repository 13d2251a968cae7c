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
import type { ServerName } from './load.js'

export interface ChartRow {
  scenario: string
  label: string
  server: string
  serverUsPerOp: number | null
  vsWs: number | null
  /** Against Socket.IO polling in the HTTP scenarios (older result files lack it). */
  vsSocketio?: number | null
}

/** The servers' names in tables and in the chart's legend order. */
export const SERVER_LABELS: Record<ServerName, string> = {
  ws: 'raw ws',
  socketio: 'Socket.IO 4',
  'signalr-json': 'fastify-signalr JSON',
  'signalr-msgpack': 'fastify-signalr MessagePack',
  'socketio-polling': 'Socket.IO 4 polling',
  'signalr-lp-json': 'fastify-signalr long polling JSON',
  'signalr-lp-msgpack': 'fastify-signalr long polling MessagePack',
  'signalr-sse-json': 'fastify-signalr SSE JSON'
}

const benchDir = dirname(fileURLToPath(import.meta.url))
export const chartPath = join(benchDir, 'cpu-per-message.svg')

// One colour per server in SERVER_LABELS order: the HTTP servers take their WebSocket counterpart's.
const COLORS = ['#8c8c8c', '#d9822b', '#2b6cb0', '#2f9e6e', '#d9822b', '#2b6cb0', '#2f9e6e', '#9f3fbf']
const WIDTH = 1000
const LABEL_W = 290
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

/** The ratio after a bar: against raw ws, or against Socket.IO polling where there is no raw ws (the HTTP panels). */
function ratioText (row: ChartRow): string {
  if (row.server === 'ws' || row.server === 'socketio-polling') return ''
  if (row.vsWs !== null) return ` (${row.vsWs.toFixed(2)}× raw ws)`
  if (row.vsSocketio !== null && row.vsSocketio !== undefined) return ` (${row.vsSocketio.toFixed(2)}× Socket.IO polling)`
  return ''
}

/** The chart as SVG text; `serverLabel` names the servers, in legend order. */
export function cpuChartSvg (rows: ChartRow[], serverLabel: Record<string, string>, subtitle: string): string {
  const servers = Object.keys(serverLabel).filter((s) => rows.some((r) => r.server === s))
  const scenarios = [...new Map(rows.map((r) => [r.scenario, r.label])).entries()]
  const parts: string[] = []
  let y = 56
  for (const [scenario, label] of scenarios) {
    // Only the servers this scenario ran on (the WebSocket and HTTP scenarios have their own).
    const mine = servers.flatMap((server, i) => {
      const row = rows.find((r) => r.scenario === scenario && r.server === server)
      return row === undefined ? [] : [{ row, server, color: COLORS[i % COLORS.length]! }]
    })
    const max = Math.max(...mine.map(({ row }) => row.serverUsPerOp ?? 0), 1e-9)
    parts.push(`<text x="10" y="${y + 16}" class="scenario">${escape(label)}</text>`)
    y += TITLE_H
    for (const { row, server, color } of mine) {
      const value = row.serverUsPerOp
      const w = value === null ? 0 : Math.max(1, (value / max) * BAR_AREA)
      parts.push(`<text x="${LABEL_W - 8}" y="${y + BAR_H - 4}" text-anchor="end">${escape(serverLabel[server]!)}</text>`)
      parts.push(`<rect x="${LABEL_W}" y="${y}" width="${w.toFixed(1)}" height="${BAR_H}" fill="${color}"/>`)
      parts.push(`<text x="${(LABEL_W + w + 6).toFixed(1)}" y="${y + BAR_H - 4}">${value === null ? 'failed' : `${num(value)} µs${ratioText(row)}`}</text>`)
      y += BAR_H + BAR_GAP
    }
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

/** One line under the title: which run the figures come from. */
export function chartSubtitle (mode: string, date: string, node: string, nproc: number, reps: number): string {
  return `npm run bench${mode === 'full' ? '' : ':' + mode}, ${date.slice(0, 16).replace('T', ' ')} UTC, node ${node}, ${nproc} cores; ` +
    `each panel scaled to its largest bar; ${reps === 1 ? 'one repetition' : `medians over ${reps} repetitions`}`
}

export function writeChart (rows: ChartRow[], subtitle: string): void {
  writeFileSync(chartPath, cpuChartSvg(rows, SERVER_LABELS, subtitle))
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
