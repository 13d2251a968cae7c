import { readFileSync } from 'node:fs'

/**
 * A TypeScript block of README.md that the packaging test compiles in fresh
 * consumer projects. A block takes part when its info string carries a mark
 * after the language: ```ts typecheck, ```ts quickstart-server or
 * ```ts quickstart-client. GitHub and npm read only the first word, so the
 * mark does not show, and the README stays the one copy of each snippet.
 */
export interface Snippet {
  readonly mark: string
  readonly code: string
  /** 1-based line of the opening fence, for messages. */
  readonly line: number
}

export const SNIPPET_MARKS = ['typecheck', 'quickstart-server', 'quickstart-client'] as const

export function readmeSnippets (readmePath: string): Snippet[] {
  const lines = readFileSync(readmePath, 'utf8').split('\n')
  const snippets: Snippet[] = []
  for (let i = 0; i < lines.length; i++) {
    // Indented fences (inside list items) count too; their indent is removed.
    const open = /^(\s*)```ts\s+(\S+)\s*$/.exec(lines[i]!)
    if (open === null) continue
    const [, indent, mark] = open as unknown as [string, string, string]
    if (!(SNIPPET_MARKS as readonly string[]).includes(mark)) {
      throw new Error(`README.md:${i + 1}: unknown snippet mark "${mark}" (known: ${SNIPPET_MARKS.join(', ')})`)
    }
    const body: string[] = []
    let j = i + 1
    for (; j < lines.length && lines[j]!.trim() !== '```'; j++) body.push(lines[j]!.slice(indent.length))
    if (j === lines.length) throw new Error(`README.md:${i + 1}: snippet has no closing fence`)
    snippets.push({ mark, code: body.join('\n') + '\n', line: i + 1 })
    i = j
  }
  return snippets
}

/** Link and image targets in Markdown that are neither absolute URLs nor anchors in the same page. */
export function relativeLinks (markdown: string): string[] {
  const targets = [...markdown.matchAll(/\]\(([^)\s]+)[^)]*\)/g)].map((m) => m[1]!)
  return targets.filter((target) => !/^(https?:\/\/|#|mailto:)/.test(target))
}
