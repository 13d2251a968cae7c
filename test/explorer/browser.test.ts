/**
 * The hub explorer and live monitor in a real headless Chromium: forms from
 * the schemas of the example chat hub and of a hub with every schema kind,
 * checks before sending, server errors after, streams both ways, a client
 * result answered from the page, and a second client closed from the monitor.
 */
import Fastify from 'fastify'
import t from 'tap'
import type { Locator, Page } from 'playwright-core'
import signalr from '../../lib/index.js'
import { chat } from '../../example-app/hubs/chat.js'
import { kinds } from '../fixtures/explorer-hub.js'
import { connect } from '../helpers/clients.js'
import { launchChromium } from '../helpers/chromium.js'

type Tap = typeof t

// A browser start and several pages take seconds, more on a loaded machine.
t.setTimeout(120_000)
const WAIT_MS = 15_000

const app = Fastify({ forceCloseConnections: true })
await app.register(signalr, { explorer: { path: '/signalr' } })
app.mapHub('/chathub', chat)
app.mapHub('/kinds', kinds)
const address = await app.listen({ host: '127.0.0.1', port: 0 })
t.teardown(() => app.close())

const browser = await launchChromium(WAIT_MS)
t.teardown(() => browser.close())

interface Explorer { page: Page, pageErrors: string[] }

async function openExplorer (t: Pick<Tap, 'teardown'>, viewport = { width: 1280, height: 800 }, hash = ''): Promise<Explorer> {
  const context = await browser.newContext({ viewport })
  t.teardown(() => context.close())
  const page = await context.newPage()
  page.setDefaultTimeout(WAIT_MS)
  const pageErrors: string[] = []
  page.on('pageerror', (err) => pageErrors.push(err.message))
  await page.goto(`${address}/signalr${hash}`)
  await page.locator('body[data-ready="true"]').waitFor()
  return { page, pageErrors }
}

/** Opens a method's card from the sidebar and returns it. */
async function method (page: Page, hub: string, name: string): Promise<Locator> {
  await page.locator('#hub-list > li', { has: page.locator('.hub-link', { hasText: hub }) }).getByRole('link', { name, exact: true }).click()
  const card = page.locator(`details.method[data-method="${name}"]`)
  await card.locator('form').waitFor()
  return card
}

const field = (card: Locator, label: string): Locator => card.getByLabel(label, { exact: true })

/** The newest result entry of a card with this class, once one contains `text`. */
async function result (card: Locator, kind: 'ok' | 'error' | 'item', text: string): Promise<string> {
  const entry = card.locator(`.results .entry.${kind}`, { hasText: text }).first()
  await entry.waitFor()
  return (await entry.textContent()) ?? ''
}

t.test('the explorer lists every hub and method, and search filters them', async (t) => {
  const { page, pageErrors } = await openExplorer(t)
  t.same(await page.locator('#hub-list .hub-link span').allTextContents(), ['chat', 'kinds'], 'both hubs, not the monitor hub')
  t.same(await page.locator('#hub-list li[data-hub="/kinds"] li a').allTextContents(),
    ['Scalars', 'Shapes', 'Loose', 'When', 'Bytes', 'Count', 'Sum', 'Fail', 'AskName'])
  await page.fill('#search', 'sendmessageto')
  t.same(await page.locator('#hub-list li[data-method]:visible a').allTextContents(), ['SendMessageToCaller', 'SendMessageToGroups'])
  t.equal(await page.locator('#hub-list > li[data-hub="/kinds"]').isHidden(), true, 'a hub without matches is hidden')
  await page.fill('#search', '')
  t.equal(await page.locator('#hub-list li[data-method]:visible').count(), 12)
  t.same(pageErrors, [])
})

t.test('chat: a zod error before sending, a server error after, then a message in the live log', async (t) => {
  const { page, pageErrors } = await openExplorer(t)
  const card = await method(page, 'chat', 'SendMessage')
  t.match(await card.locator('.hint').first().textContent(), 'at least 1 character · at most 100 characters', 'constraints shown')

  // Empty user name: the schema says min(1); nothing is sent, not even a connection.
  await field(card, 'Argument 1').fill('hello')
  await card.getByRole('button', { name: 'Invoke' }).click()
  await card.locator('.field-error:visible', { hasText: 'must have at least 1 character' }).waitFor()
  t.equal(await field(card, 'Argument 0').getAttribute('aria-invalid'), 'true')
  t.equal(await card.locator('.form-error').textContent(), 'Not sent: Argument 0 does not match the schema.')
  t.equal(await page.locator('.status').first().getAttribute('data-state'), 'disconnected', 'no connection was made')

  // Blank message: passes the schema, the handler's HubError comes back.
  await field(card, 'Argument 0').fill('ada')
  await field(card, 'Argument 1').fill('   ')
  await card.getByRole('button', { name: 'Invoke' }).click()
  t.match(await result(card, 'error', 'HubException'),
    "An unexpected error occurred invoking 'SendMessage' on the server. HubException: Message must not be empty")
  t.equal(await card.locator('.field-error:visible').count(), 0, 'the field error is gone')

  await field(card, 'Argument 1').fill('hi from the explorer')
  await card.getByRole('button', { name: 'Invoke' }).click()
  await result(card, 'ok', 'result')
  const logged = page.locator('#log .entry.message', { hasText: 'ReceiveMessage' }).first()
  await logged.waitFor()
  t.same(JSON.parse((await logged.locator('pre').textContent())!), ['ada', 'hi from the explorer'], 'the broadcast back to this page')
  t.same(pageErrors, [])
})

t.test('every schema kind: scalars, enum, arrays, objects, optional, nullable, dates, bytes', async (t) => {
  const { page, pageErrors } = await openExplorer(t)

  const scalars = await method(page, 'kinds', 'Scalars')
  await field(scalars, 'Argument 0').fill('x')
  await field(scalars, 'Argument 1').fill('101')
  await scalars.getByRole('button', { name: 'Invoke' }).click()
  await scalars.locator('.field-error', { hasText: 'must have at least 2 characters' }).waitFor()
  await scalars.locator('.field-error', { hasText: 'must be ≤ 100' }).waitFor()
  await field(scalars, 'Argument 0').fill('ab')
  await field(scalars, 'Argument 1').fill('2.5')
  await scalars.getByRole('button', { name: 'Invoke' }).click()
  await scalars.locator('.field-error', { hasText: 'expected integer' }).waitFor()
  await field(scalars, 'Argument 1').fill('5')
  await field(scalars, 'Argument 2').check()
  await field(scalars, 'Argument 3').selectOption({ label: 'green' })
  await scalars.getByRole('button', { name: 'Invoke' }).click()
  t.match(await result(scalars, 'ok', 'ab|5|true|green'), /ms/, 'a result with its timing')

  const shapes = await method(page, 'kinds', 'Shapes')
  await shapes.getByRole('button', { name: 'Invoke' }).click()
  await shapes.locator('.field-error', { hasText: 'must have at least 1 character' }).first().waitFor()
  await field(shapes, 'Item 1').fill('one')
  await shapes.getByRole('button', { name: 'Add item to Argument 0' }).click()
  await field(shapes, 'Item 2').fill('two')
  await field(shapes, 'name').fill('Ada')
  await field(shapes, 'email').fill('not an email')
  await field(shapes, 'Argument 2').fill('1.5')
  await shapes.getByRole('button', { name: 'Invoke' }).click()
  await shapes.locator('.field-error', { hasText: 'must be a valid email' }).waitFor()
  await field(shapes, 'email').fill('ada@example.com')
  await shapes.getByLabel('age: value, null or omitted').selectOption('value')
  await field(shapes, 'age').fill('36')
  await shapes.getByLabel('Argument 2: value, null or omitted').selectOption('null')
  await field(shapes, 'Argument 3').fill('a note')
  await shapes.getByRole('button', { name: 'Invoke' }).click()
  await result(shapes, 'ok', 'result')
  const shaped = JSON.parse((await shapes.locator('.results .entry.ok pre').first().textContent())!)
  t.same(shaped, { list: ['one', 'two'], person: { name: 'Ada', age: 36, email: 'ada@example.com' }, note: 'a note', score: null },
    'array items, object properties with one left out, and a null')

  // Unions and records get a JSON box, checked against the schema too.
  const loose = await method(page, 'kinds', 'Loose')
  t.match(await loose.locator('.hint').first().textContent(), 'string | number as JSON')
  await field(loose, 'Argument 0').fill('true')
  await field(loose, 'Argument 1').fill('{"a": 1.5}')
  await loose.getByRole('button', { name: 'Invoke' }).click()
  await loose.locator('.field-error', { hasText: 'expected string or number, got boolean' }).waitFor()
  await loose.locator('.field-error', { hasText: 'a: expected integer' }).waitFor()
  await field(loose, 'Argument 0').fill('42')
  await field(loose, 'Argument 1').fill('{"a": 1, "b": 2}')
  await loose.getByRole('button', { name: 'Invoke' }).click()
  await result(loose, 'ok', 'result')
  t.same(JSON.parse((await loose.locator('.results .entry.ok pre').first().textContent())!), { key: 42, counts: { a: 1, b: 2 } })

  // Dates and bytes over MessagePack: a Date travels as a timestamp, bytes as bin.
  const connectBar = page.getByRole('form', { name: 'Connection to kinds' })
  await connectBar.getByRole('button', { name: 'Disconnect' }).click()
  await page.locator('.status[data-state="disconnected"]').waitFor()
  await page.selectOption('#protocol', 'messagepack')
  const when = await method(page, 'kinds', 'When')
  await field(when, 'Argument 0').fill('2024-05-01T12:30:15')
  await when.getByRole('button', { name: 'Invoke' }).click()
  const expected = new Date(await page.evaluate(() => new Date('2024-05-01T12:30:15').toISOString())).toISOString()
  await result(when, 'ok', expected)
  t.match(await page.locator('.status').first().textContent(), / · WebSockets · messagepack$/, 'the status names the transport and protocol')

  const bytes = await method(page, 'kinds', 'Bytes')
  await field(bytes, 'Argument 0').fill('not base64!')
  await bytes.getByRole('button', { name: 'Invoke' }).click()
  await bytes.locator('.field-error', { hasText: 'must be base64' }).waitFor()
  await field(bytes, 'Argument 0').fill('AQID')
  await bytes.getByRole('button', { name: 'Invoke' }).click()
  await result(bytes, 'ok', '3 bytes, sum 6')
  t.same(pageErrors, [])
})

t.test('streams both ways, a server error, and a client result answered from the page', async (t) => {
  const { page, pageErrors } = await openExplorer(t)

  const count = await method(page, 'kinds', 'Count')
  t.equal(await count.getByRole('button', { name: 'Invoke' }).count(), 0, 'a stream method has no Invoke button')
  await field(count, 'Argument 0').fill('3')
  await count.getByRole('button', { name: 'Stream' }).click()
  await result(count, 'ok', 'stream complete (3 items)')
  t.same(await count.locator('.results .entry.item pre').allTextContents(), ['2', '1', '0'], 'every item, newest first')

  const sum = await method(page, 'kinds', 'Sum')
  const add = sum.getByRole('button', { name: 'Add item to Argument 0 (upload stream items)' })
  for (const [i, n] of ['1', '2', '39'].entries()) {
    await add.click()
    await field(sum, `Item ${i + 1}`).fill(n)
  }
  await sum.getByRole('button', { name: 'Invoke' }).click()
  t.match(await result(sum, 'ok', 'result'), '42')

  const fail = await method(page, 'kinds', 'Fail')
  await fail.getByRole('button', { name: 'Invoke' }).click()
  t.match(await result(fail, 'error', 'HubException'), 'HubException: this method always fails')

  const ask = await method(page, 'kinds', 'AskName')
  await ask.getByRole('button', { name: 'Invoke' }).click()
  await page.locator('#log .entry.message', { hasText: 'Notify' }).waitFor()
  const request = page.locator('#log .entry.needs-answer', { hasText: 'GetName' })
  await request.waitFor()
  t.match(await request.locator('pre').textContent(), 'What is your name?')
  // The declared result schema (min(1)) is checked before replying.
  await request.getByRole('button', { name: 'Reply', exact: true }).click()
  await request.locator('.field-error', { hasText: 'must have at least 1 character' }).waitFor()
  await request.getByLabel('Result for GetName', { exact: true }).fill('Ada')
  await request.getByRole('button', { name: 'Reply', exact: true }).click()
  await result(ask, 'ok', 'hello Ada')
  t.same(pageErrors, [])
})

t.test('the monitor shows a second client and closes it', async (t) => {
  const { page, pageErrors } = await openExplorer(t, undefined, '#monitor')
  await page.locator('#monitor-status[data-state="connected"]').waitFor()
  t.match(await page.locator('#monitor-scope').textContent(), 'Everything on this server')

  const other = await connect(t, `${address}/chathub`)
  const id = other.connectionId!
  const closed = new Promise<Error | undefined>((resolve) => other.onclose(resolve))
  const row = page.locator(`tr[data-connection-id="${id}"]`)
  await row.waitFor()
  t.match(await row.textContent(), 'WebSockets')
  t.match(await row.textContent(), 'SignalR Users', 'its group')
  await page.locator('tr[data-hub="chat"]').waitFor()
  t.match(await page.locator('table', { hasText: 'Groups and their members' }).textContent(), 'SignalR Users')

  await row.getByRole('button', { name: `Close connection ${id}` }).click()
  t.equal(await closed, undefined, 'the client was closed by the server without an error')
  await row.waitFor({ state: 'detached' })
  t.match(await page.locator('#monitor-message').textContent(), `Closed connection ${id}.`)
  t.same(pageErrors, [])
})

t.test('keyboard, phone width and the dark theme', async (t) => {
  const { page } = await openExplorer(t, { width: 390, height: 800 })
  t.ok(await page.evaluate(() => document.documentElement.scrollWidth <= 390), 'no horizontal scrolling at 390 px')
  await page.focus('#tab-explorer')
  await page.keyboard.press('ArrowRight')
  t.equal(await page.getAttribute('#tab-monitor', 'aria-selected'), 'true', 'arrow keys move between the tabs')
  t.equal(await page.evaluate(() => document.activeElement?.id), 'tab-monitor')
  t.equal(await page.isHidden('#view-explorer'), true)

  const light = await page.evaluate(() => getComputedStyle(document.body).backgroundColor)
  await page.emulateMedia({ colorScheme: 'dark' })
  const dark = await page.evaluate(() => getComputedStyle(document.body).backgroundColor)
  t.not(dark, light, 'the page follows prefers-color-scheme')
})
