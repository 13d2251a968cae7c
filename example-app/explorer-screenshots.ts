/**
 * Regenerates the README's pictures of the hub explorer and the live monitor
 * (docs/explorer.png, docs/monitor.png, docs/explorer-phone-dark.png) from the
 * example app, in headless Chromium:
 *
 *   node --import tsx example-app/explorer-screenshots.ts
 */
import { fileURLToPath } from 'node:url'
import * as signalR from '@microsoft/signalr'
import { launchChromium } from '../test/helpers/chromium.js'
import { build } from './app.js'

const docs = (name: string): string => fileURLToPath(new URL(`../docs/${name}`, import.meta.url))

const app = await build()
const address = await app.listen({ host: '127.0.0.1', port: 0 })
const browser = await launchChromium(15_000)
const others: signalR.HubConnection[] = []
try {
  // Two other chat users, so the monitor has something to show.
  for (const transport of [signalR.HttpTransportType.WebSockets, signalR.HttpTransportType.LongPolling]) {
    const connection = new signalR.HubConnectionBuilder().withUrl(`${address}/chathub`, { transport })
      .configureLogging(signalR.LogLevel.None).build()
    await connection.start()
    others.push(connection)
  }

  const context = await browser.newContext({ viewport: { width: 1280, height: 800 }, colorScheme: 'light' })
  const page = await context.newPage()
  await page.goto(`${address}/signalr`)
  await page.locator('body[data-ready="true"]').waitFor()
  const card = page.locator('details.method[data-method="SendMessage"]')
  await card.getByLabel('Argument 1', { exact: true }).fill('Hello from the explorer')
  await card.getByRole('button', { name: 'Invoke' }).click()
  await card.locator('.field-error:visible').waitFor()
  await card.getByLabel('Argument 0', { exact: true }).fill('ada')
  await card.getByRole('button', { name: 'Invoke' }).click()
  await page.locator('#log .entry.message').first().waitFor()
  await others[0]!.invoke('SendMessage', 'bob', 'Hi Ada, I am a Node client')
  await page.locator('#log .entry.message').nth(1).waitFor()
  await card.getByLabel('Argument 1', { exact: true }).fill('')
  await card.getByLabel('Argument 0', { exact: true }).fill('')
  await card.getByRole('button', { name: 'Invoke' }).click()
  await page.mouse.move(0, 0)
  await page.screenshot({ path: docs('explorer.png') })

  await page.click('#tab-monitor')
  await page.locator('#monitor-content table').first().waitFor()
  await page.locator('#stat-connections .tile-value', { hasText: '3' }).waitFor()
  // Some traffic, so the rates are not all zero.
  const chatter = setInterval(() => { void others[1]!.invoke('SendMessage', 'carol', 'over long polling') }, 100)
  await page.locator('#stat-invocations .tile-value').filter({ hasNotText: /^0\.0$/ }).waitFor()
  clearInterval(chatter)
  await page.mouse.move(0, 0)
  await page.screenshot({ path: docs('monitor.png') })

  const phone = await browser.newContext({ viewport: { width: 390, height: 844 }, colorScheme: 'dark', deviceScaleFactor: 1 })
  const phonePage = await phone.newPage()
  await phonePage.goto(`${address}/signalr`)
  await phonePage.locator('body[data-ready="true"]').waitFor()
  await phonePage.screenshot({ path: docs('explorer-phone-dark.png') })
  console.log('wrote docs/explorer.png, docs/monitor.png, docs/explorer-phone-dark.png')
} finally {
  await Promise.all(others.map((c) => c.stop()))
  await browser.close()
  await app.close()
}
