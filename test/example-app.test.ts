import { readFile } from 'node:fs/promises'
import { createRequire } from 'node:module'
import t from 'tap'
import * as signalR from '@microsoft/signalr'
import { build } from '../example-app/app.js'

type Message = [user: string, message: string]
type Tap = typeof t

/**
 * Records every ReceiveMessage a connection gets, in order. `next()` resolves
 * with the oldest message not yet taken, waiting for one if needed.
 */
class Inbox {
  readonly #received: Message[] = []
  readonly #waiting: Array<(message: Message) => void> = []

  constructor (connection: signalR.HubConnection) {
    connection.on('ReceiveMessage', (user: string, message: string) => {
      const waiter = this.#waiting.shift()
      if (waiter) waiter([user, message])
      else this.#received.push([user, message])
    })
  }

  next (): Promise<Message> {
    const message = this.#received.shift()
    if (message) return Promise.resolve(message)
    return new Promise((resolve) => this.#waiting.push(resolve))
  }
}

const app = await build()
const address = await app.listen({ host: '127.0.0.1', port: 0 })
t.teardown(() => app.close())

async function connect (t: Pick<Tap, 'teardown'>): Promise<{ connection: signalR.HubConnection, inbox: Inbox }> {
  const connection = new signalR.HubConnectionBuilder()
    .withUrl(`${address}/chathub`, {
      transport: signalR.HttpTransportType.WebSockets,
      skipNegotiation: false
    })
    .configureLogging(signalR.LogLevel.None)
    .build()
  // Listen before start() so no message can slip past.
  const inbox = new Inbox(connection)
  await connection.start()
  t.teardown(() => connection.stop())
  return { connection, inbox }
}

t.test('GET / serves the chat page', async (t) => {
  const res = await fetch(`${address}/`)
  t.equal(res.status, 200)
  t.match(res.headers.get('content-type'), /^text\/html/)
  const body = await res.text()
  t.match(body, '<script src="/signalr.js"></script>')
  for (const id of ['user', 'message', 'send-all', 'send-caller', 'send-groups', 'messages', 'status', 'error']) {
    t.match(body, `id="${id}"`, `has #${id}`)
  }
})

t.test('GET /app.js serves the page script', async (t) => {
  const res = await fetch(`${address}/app.js`)
  t.equal(res.status, 200)
  t.match(res.headers.get('content-type'), /^text\/javascript/)
  t.match(await res.text(), "withUrl('/chathub')")
})

t.test('GET /signalr.js serves the official browser client from node_modules', async (t) => {
  const res = await fetch(`${address}/signalr.js`)
  t.equal(res.status, 200)
  t.match(res.headers.get('content-type'), /^text\/javascript/)
  const onDisk = await readFile(
    createRequire(import.meta.url).resolve('@microsoft/signalr/dist/browser/signalr.js'), 'utf8')
  t.ok((await res.text()) === onDisk, 'same bytes as @microsoft/signalr/dist/browser/signalr.js')
})

t.test('chat hub with two official Node clients', async (t) => {
  const alice = await connect(t)
  const bob = await connect(t)

  // Every connection gets hub messages in the order the server sent them, so
  // when a later broadcast is the next thing a connection receives, it did
  // not receive anything before it. This proves an absence without sleeping.
  async function marker (t: Pick<Tap, 'same'>, text: string): Promise<void> {
    const [, toAlice, toBob] = await Promise.all([
      alice.connection.invoke('SendMessage', 'marker', text),
      alice.inbox.next(),
      bob.inbox.next()
    ])
    t.same(toAlice, ['marker', text], `alice's next message is marker ${text}`)
    t.same(toBob, ['marker', text], `bob's next message is marker ${text}`)
  }

  await t.test('SendMessage reaches every connection', async (t) => {
    const [, toAlice, toBob] = await Promise.all([
      alice.connection.invoke('SendMessage', 'alice', 'hello everyone'),
      alice.inbox.next(),
      bob.inbox.next()
    ])
    t.same(toAlice, ['alice', 'hello everyone'])
    t.same(toBob, ['alice', 'hello everyone'])
  })

  await t.test('SendMessageToCaller reaches only the caller', async (t) => {
    const [, toAlice] = await Promise.all([
      alice.connection.invoke('SendMessageToCaller', 'alice', 'just for me'),
      alice.inbox.next()
    ])
    t.same(toAlice, ['alice', 'just for me'])
    await marker(t, 'after caller')
  })

  await t.test('SendMessageToGroups reaches both members of "SignalR Users"', async (t) => {
    const [, toAlice, toBob] = await Promise.all([
      bob.connection.invoke('SendMessageToGroups', 'bob', 'hello group'),
      alice.inbox.next(),
      bob.inbox.next()
    ])
    t.same(toAlice, ['bob', 'hello group'])
    t.same(toBob, ['bob', 'hello group'])
  })

  await t.test('a whitespace-only message rejects with the HubError text', async (t) => {
    for (const method of ['SendMessage', 'SendMessageToCaller', 'SendMessageToGroups']) {
      await t.rejects(
        alice.connection.invoke(method, 'alice', ' \t\n '),
        { message: /Message must not be empty/ },
        method
      )
    }
    await marker(t, 'after blank messages')
  })

  await t.test('arguments that fail their schema reject and reach nobody', async (t) => {
    await t.rejects(alice.connection.invoke('SendMessage', '', 'no name'), { message: /SendMessage/ },
      'empty user')
    await t.rejects(alice.connection.invoke('SendMessage', 'x'.repeat(101), 'long name'), { message: /SendMessage/ },
      'user longer than 100')
    await t.rejects(alice.connection.invoke('SendMessage', 'alice', 'x'.repeat(4001)), { message: /SendMessage/ },
      'message longer than 4000')
    await t.rejects(alice.connection.invoke('SendMessage', 'alice', 42), { message: /SendMessage/ },
      'message that is not a string')
    await marker(t, 'after invalid arguments')
  })

  await t.test('the limits themselves are accepted', async (t) => {
    const user = 'u'.repeat(100)
    const message = 'm'.repeat(4000)
    const [, toAlice, toBob] = await Promise.all([
      alice.connection.invoke('SendMessage', user, message),
      alice.inbox.next(),
      bob.inbox.next()
    ])
    t.same(toAlice, [user, message])
    t.same(toBob, [user, message])
  })
})
