/**
 * Regenerates docs/screenshot.png, the README's picture of the chat example:
 * two users chat in headless Chromium and one page is captured.
 *
 *   node --import tsx example-app/screenshot.ts
 *
 * Needs Debian's chromium (/usr/bin/chromium, or CHROMIUM_PATH); playwright-core
 * drives it and never downloads a browser of its own.
 */
import { mkdir } from 'node:fs/promises'
import { fileURLToPath } from 'node:url'
import { chromium, type Browser, type Page } from 'playwright-core'
import { build } from './app.js'

const CHROMIUM = process.env.CHROMIUM_PATH ?? '/usr/bin/chromium'
// Chromium's own background connections are refused on a closed network.
const CHROMIUM_ARGS = [
  '--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
  '--disable-background-networking', '--disable-component-update', '--disable-sync'
]
const VIEWPORT = { width: 900, height: 600 }
const OUTPUT = new URL('../docs/screenshot.png', import.meta.url)

async function openChat (browser: Browser, address: string, user: string): Promise<Page> {
  const context = await browser.newContext({ viewport: VIEWPORT, deviceScaleFactor: 1, colorScheme: 'light' })
  const page = await context.newPage()
  await page.goto(`${address}/`)
  await page.locator('#status[data-state="connected"]').waitFor()
  await page.fill('#user', user)
  return page
}

async function say (page: Page, button: string, text: string, waitOn: Page[], count: number): Promise<void> {
  await page.fill('#message', text)
  await page.click(button)
  await Promise.all(waitOn.map((p) => p.locator('#messages li').nth(count - 1).waitFor()))
}

const app = await build()
const address = await app.listen({ host: '127.0.0.1', port: 0 })
const browser = await chromium.launch({ executablePath: CHROMIUM, args: CHROMIUM_ARGS })
try {
  const ada = await openChat(browser, address, 'Ada')
  const bob = await openChat(browser, address, 'Bob')

  await say(ada, '#send-all', 'Hi Bob! This page talks to a Fastify hub over SignalR.', [ada, bob], 1)
  await say(bob, '#send-all', 'Hello Ada, I am in another tab. Works with the official client.', [ada, bob], 2)
  await say(ada, '#send-groups', 'Everyone online joins the "SignalR Users" group.', [ada, bob], 3)
  await say(bob, '#send-all', 'And zod checks every argument before a handler runs.', [ada, bob], 4)
  await say(ada, '#send-caller', 'Note to self: "Send to me" reaches only this tab.', [ada], 5)
  await ada.fill('#message', 'Nice!')
  // No hover highlight on the last button clicked.
  await ada.mouse.move(0, 0)

  await mkdir(new URL('.', OUTPUT), { recursive: true })
  await ada.screenshot({ path: fileURLToPath(OUTPUT) })
  console.log(`wrote ${fileURLToPath(OUTPUT)}`)
} finally {
  await browser.close()
  await app.close()
}
