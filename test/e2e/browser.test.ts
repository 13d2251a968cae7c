/**
 * The example chat page in a real headless Chromium (Debian's `chromium`,
 * driven by playwright-core): two pages chat, one keeps a message to itself,
 * both see group messages, and the server's error texts reach `#error`.
 * A missing Chromium fails this file; it never skips.
 */
import { existsSync } from 'node:fs'
import t from 'tap'
import { chromium, type Browser, type Page } from 'playwright-core'
import { build } from '../../example-app/app.js'

type Tap = typeof t
type Message = [user: string, text: string]

const CHROMIUM = process.env.CHROMIUM_PATH ?? '/usr/bin/chromium'

// The closed network refuses Chromium's own background connections (updates,
// sync, QUIC probes), so they are turned off. playwright-core gives every
// launch a fresh temporary profile (--user-data-dir) and removes it on close.
const CHROMIUM_ARGS = [
  '--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
  '--disable-background-networking', '--disable-component-update', '--disable-sync'
]

// A browser start and six pages take seconds, more on a loaded CI machine:
// this file gets more than tap's 60 s default. One wait stays far below it,
// so a stuck wait fails by naming its selector.
t.setTimeout(120_000)
const WAIT_MS = 15_000

if (!existsSync(CHROMIUM)) {
  throw new Error(`Chromium not found at ${CHROMIUM}. Install Debian's chromium package ` +
    '(apt-get install -y chromium; npm test does this) or set CHROMIUM_PATH. ' +
    'This test must not be skipped.')
}

const app = await build()
const address = await app.listen({ host: '127.0.0.1', port: 0 })
t.teardown(() => app.close())

// Closed before the app (tap runs teardowns last-in first-out), so the app's
// close does not wait on live browser connections.
const browser: Browser = await chromium.launch({ executablePath: CHROMIUM, args: CHROMIUM_ARGS, timeout: WAIT_MS })
t.teardown(() => browser.close())

interface ChatPage {
  page: Page
  /** Uncaught exceptions in the page: any is a failure. */
  pageErrors: string[]
  /** URLs of WebSockets the page opened. */
  webSockets: string[]
  /** Method and URL of every HTTP request to the hub. */
  hubRequests: string[]
}

async function openChat (t: Pick<Tap, 'teardown'>, query = ''): Promise<ChatPage> {
  // One context each: separate storage, as two browser tabs of two users.
  const context = await browser.newContext({ viewport: { width: 900, height: 600 } })
  t.teardown(() => context.close())
  const page = await context.newPage()
  page.setDefaultTimeout(WAIT_MS)
  const chat: ChatPage = { page, pageErrors: [], webSockets: [], hubRequests: [] }
  page.on('pageerror', (err) => chat.pageErrors.push(err.message))
  page.on('websocket', (ws) => chat.webSockets.push(ws.url()))
  page.on('request', (request) => {
    if (new URL(request.url()).pathname.startsWith('/chathub')) chat.hubRequests.push(`${request.method()} ${request.url()}`)
  })
  await page.goto(`${address}/${query}`)
  await page.locator('#status[data-state="connected"]').waitFor()
  return chat
}

async function messages (page: Page): Promise<Message[]> {
  return page.locator('#messages li').evaluateAll((items) => items.map((item) => {
    const [user, text] = Array.from(item.children, (child) => child.textContent ?? '')
    return [user ?? '', text ?? ''] as Message
  }))
}

/** Waits until the page lists `count` messages, then returns all of them. */
async function messagesAfter (page: Page, count: number): Promise<Message[]> {
  await page.locator('#messages li').nth(count - 1).waitFor()
  return messages(page)
}

async function send (page: Page, button: '#send-all' | '#send-caller' | '#send-groups', user: string, text: string): Promise<void> {
  await page.fill('#user', user)
  await page.fill('#message', text)
  await page.click(button)
}

/**
 * Waits for `#error` to show a text containing `expected` and returns the
 * whole text. The page clears `#error` when it sends, so a new error is told
 * from an old one by its text.
 */
async function shownError (page: Page, expected: string): Promise<string> {
  const error = page.locator('#error:visible', { hasText: expected })
  await error.waitFor()
  return (await error.textContent()) ?? ''
}

t.test('two pages chat through the hub', async (t) => {
  const a = await openChat(t)
  const b = await openChat(t)

  for (const { page } of [a, b]) {
    t.equal(await page.textContent('#status'), 'Connected', 'status line says Connected')
    t.equal(await page.isEnabled('#send-all'), true, 'buttons are enabled once connected')
  }

  const hello: Message = ['ada', 'hello everyone']
  await send(a.page, '#send-all', ...hello)
  t.same(await messagesAfter(a.page, 1), [hello], 'A sees its own message to all')
  t.same(await messagesAfter(b.page, 1), [hello], 'B sees the message to all')

  const private_: Message = ['bob', 'a note to myself']
  await send(b.page, '#send-caller', ...private_)
  t.same(await messagesAfter(b.page, 2), [hello, private_], 'B sees its message to itself')

  // Each page gets hub messages in the order the server sent them: if B's
  // note had gone to A, it would be listed before this broadcast.
  const barrier: Message = ['bob', 'barrier after the note']
  await send(b.page, '#send-all', ...barrier)
  t.same(await messagesAfter(a.page, 2), [hello, barrier], 'A never got the message B sent to itself')
  t.same(await messagesAfter(b.page, 3), [hello, private_, barrier])

  // Both pages joined the group in the hub's onConnected.
  const group: Message = ['ada', 'hello group']
  await send(a.page, '#send-groups', ...group)
  t.same(await messagesAfter(a.page, 3), [hello, barrier, group], 'A sees the group message')
  t.same(await messagesAfter(b.page, 4), [hello, private_, barrier, group], 'B sees the group message')

  t.equal(await a.page.isHidden('#error'), true, 'no error shown after successful sends')
  t.same([...a.pageErrors, ...b.pageErrors], [], 'no uncaught errors in the pages')
  t.same(a.webSockets.map((url) => new URL(url).pathname), ['/chathub'], 'A talks over one WebSocket')
})

t.test('the server\'s error texts are shown in #error', async (t) => {
  const a = await openChat(t)
  const b = await openChat(t)

  // The hub's own HubError: the schema lets a blank message through.
  await send(a.page, '#send-all', 'ada', '   ')
  t.equal(await shownError(a.page, 'Message must not be empty'),
    "An unexpected error occurred invoking 'SendMessage' on the server. HubException: Message must not be empty")

  // A failed zod schema (the user name must not be empty): the error names
  // the method and the argument; zod's own wording is not pinned here.
  await send(a.page, '#send-groups', '', 'no name')
  const bindingError = await shownError(a.page, 'Error binding arguments')
  t.match(bindingError, /^Failed to invoke 'SendMessageToGroups' due to an error on the server\. InvalidDataException: Error binding arguments\. .*Argument 0: \S/)

  // Neither bad call reached anyone: the next broadcast is the first message.
  const barrier: Message = ['bob', 'after the errors']
  await send(b.page, '#send-all', ...barrier)
  t.same(await messagesAfter(a.page, 1), [barrier], 'A got nothing from the rejected calls')
  t.same(await messagesAfter(b.page, 1), [barrier], 'B got nothing from the rejected calls')

  // A good send clears the error.
  await send(a.page, '#send-all', 'ada', 'fixed')
  await a.page.locator('#error').waitFor({ state: 'hidden' })
  t.same(await messagesAfter(b.page, 2), [barrier, ['ada', 'fixed']])
  t.same([...a.pageErrors, ...b.pageErrors], [], 'no uncaught errors in the pages')
})

t.test('?transport=longPolling chats over long polling with a WebSocket page', async (t) => {
  const polling = await openChat(t, '?transport=longPolling')
  const ws = await openChat(t)

  const fromPolling: Message = ['poll', 'sent over long polling']
  await send(polling.page, '#send-all', ...fromPolling)
  t.same(await messagesAfter(polling.page, 1), [fromPolling])
  t.same(await messagesAfter(ws.page, 1), [fromPolling], 'the WebSocket page got it')

  const fromWs: Message = ['socket', 'sent over a WebSocket']
  await send(ws.page, '#send-groups', ...fromWs)
  t.same(await messagesAfter(polling.page, 2), [fromPolling, fromWs], 'the polling page got the group message')

  t.same(polling.webSockets, [], 'the polling page opened no WebSocket')
  t.ok(polling.hubRequests.some((r) => /^GET .*\/chathub\?id=/.test(r)), 'it polled with GET /chathub?id=…')
  t.ok(polling.hubRequests.some((r) => /^POST .*\/chathub\?id=/.test(r)), 'it sent with POST /chathub?id=…')
  t.same([...polling.pageErrors, ...ws.pageErrors], [], 'no uncaught errors in the pages')
})
