// Selectors and group calls never throw: whatever is wrong (a bad argument, a
// value that cannot be serialized, a backplane that throws), the call returns
// a promise that rejects, inside a hub and through hubContext alike.
import t from 'tap'
import { z } from 'zod'
import { defineHub, memoryBackplane, MemoryBus, type Backplane, type HubCallerClients, type HubClients } from '../../lib/index.js'
import { startApp } from '../helpers/app.js'
import { connect } from '../helpers/clients.js'

interface Outcome { call: string, threw: boolean, code?: string, message?: string }

/** Runs `call`, recording whether it threw synchronously and what its promise rejected with. */
async function probe (call: string, run: () => Promise<unknown>): Promise<Outcome> {
  let pending: Promise<unknown>
  try {
    pending = run()
  } catch (err) {
    return { call, threw: true, code: (err as { code?: string }).code, message: (err as Error).message }
  }
  try {
    await pending
    return { call, threw: false }
  } catch (err) {
    return { call, threw: false, code: (err as { code?: string }).code, message: (err as Error).message }
  }
}

const bad = 42 as unknown as string
const badList = 'not-a-list' as unknown as string[]

/** Every selector of IHubClients with a bad argument, and send/invoke on it. */
function selectorCalls (clients: HubClients<any>): Array<[string, () => Promise<unknown>]> {
  return [
    ['client(42).send', () => clients.client(bad).send('m')],
    ['client(42).invoke', () => clients.client(bad).invoke('m')],
    ['clients("not-a-list")', () => clients.clients(badList).send('m')],
    ['allExcept("not-a-list")', () => clients.allExcept(badList).send('m')],
    ['group(42)', () => clients.group(bad).send('m')],
    ['groups("not-a-list")', () => clients.groups(badList).send('m')],
    ['groupExcept(42, [])', () => clients.groupExcept(bad, []).send('m')],
    ['groupExcept("g", "not-a-list")', () => clients.groupExcept('g', badList).send('m')],
    ['user(42)', () => clients.user(bad).send('m')],
    ['users("not-a-list")', () => clients.users(badList).send('m')]
  ]
}

function callerCalls (clients: HubCallerClients<any>): Array<[string, () => Promise<unknown>]> {
  return [...selectorCalls(clients), ['othersInGroup(42)', () => clients.othersInGroup(bad).send('m')]]
}

const hub = defineHub({
  name: 'selector-errors',
  methods: {
    BadSelectors: {
      args: [],
      handler: (hub) => Promise.all(callerCalls(hub.clients).map(([call, run]) => probe(call, run)))
    },
    BadGroups: {
      args: [],
      handler: (hub) => Promise.all([
        probe('groups.add(42, "g")', () => hub.groups.add(bad, 'g')),
        probe('groups.add(id, 42)', () => hub.groups.add(hub.connectionId, bad)),
        probe('groups.remove(42, "g")', () => hub.groups.remove(bad, 'g')),
        probe('groups.remove(id, 42)', () => hub.groups.remove(hub.connectionId, bad))
      ])
    },
    Unserializable: {
      args: [],
      handler: (hub) => Promise.all([
        probe('caller.send(2^64)', () => hub.clients.caller.send('m', 2n ** 64n)),
        probe('caller.invoke(2^64)', () => hub.clients.caller.invoke('m', 2n ** 64n)),
        probe('client(id).invoke(2^64)', () => hub.clients.client(hub.connectionId).invoke('m', 2n ** 64n)),
        probe('all.send(2^64)', () => hub.clients.all.send('m', 2n ** 64n))
      ])
    },
    Join: { args: [z.string()], handler: (hub, group) => probe('groups.add', () => hub.groups.add(hub.connectionId, group)) }
  }
})

function invalid (call: string, name: string, expected: string, got: string): Outcome {
  return { call, threw: false, code: 'SIGNALR_ERR_INVALID_ARGUMENT', message: `${name} must be ${expected}; got ${got}` }
}

const SELECTOR_REFUSALS: Outcome[] = [
  invalid('client(42).send', 'connectionId', 'a string', '42'),
  invalid('client(42).invoke', 'connectionId', 'a string', '42'),
  invalid('clients("not-a-list")', 'connectionIds', 'an array of strings', "'not-a-list'"),
  invalid('allExcept("not-a-list")', 'excludedConnectionIds', 'an array of strings', "'not-a-list'"),
  invalid('group(42)', 'groupName', 'a string', '42'),
  invalid('groups("not-a-list")', 'groupNames', 'an array of strings', "'not-a-list'"),
  invalid('groupExcept(42, [])', 'groupName', 'a string', '42'),
  invalid('groupExcept("g", "not-a-list")', 'excludedConnectionIds', 'an array of strings', "'not-a-list'"),
  invalid('user(42)', 'userId', 'a string', '42'),
  invalid('users("not-a-list")', 'userIds', 'an array of strings', "'not-a-list'")
]

t.test('every selector with a bad argument returns a rejected promise, inside a hub', async (t) => {
  const { baseUrl } = await startApp(t, (app) => { app.mapHub('/hub', hub) })
  const c = await connect(t, `${baseUrl}/hub`)
  t.same(await c.invoke('BadSelectors'), [...SELECTOR_REFUSALS, invalid('othersInGroup(42)', 'groupName', 'a string', '42')])
  t.same(await c.invoke('BadGroups'), [
    invalid('groups.add(42, "g")', 'connectionId', 'a string', '42'),
    invalid('groups.add(id, 42)', 'groupName', 'a string', '42'),
    invalid('groups.remove(42, "g")', 'connectionId', 'a string', '42'),
    invalid('groups.remove(id, 42)', 'groupName', 'a string', '42')
  ])
})

t.test('every selector with a bad argument returns a rejected promise, through hubContext', async (t) => {
  const { app } = await startApp(t, (app) => { app.mapHub('/hub', hub) })
  const context = app.signalr.hubContext(hub)
  t.same(await Promise.all(selectorCalls(context.clients).map(([call, run]) => probe(call, run))), SELECTOR_REFUSALS)
  t.same(await probe('groups.add(42, "g")', () => context.groups.add(bad, 'g')), invalid('groups.add(42, "g")', 'connectionId', 'a string', '42'))
})

t.test('a value that cannot be serialized rejects the send or invoke it belongs to', async (t) => {
  const { baseUrl } = await startApp(t, (app) => { app.mapHub('/hub', hub) })
  const c = await connect(t, `${baseUrl}/hub`)
  const outcomes = await c.invoke('Unserializable') as Outcome[]
  t.same(outcomes.map((o) => [o.call, o.threw, o.code]), [
    ['caller.send(2^64)', false, 'SIGNALR_ERR_SERIALIZATION'],
    ['caller.invoke(2^64)', false, 'SIGNALR_ERR_SERIALIZATION'],
    ['client(id).invoke(2^64)', false, 'SIGNALR_ERR_SERIALIZATION'],
    ['all.send(2^64)', false, 'SIGNALR_ERR_SERIALIZATION']
  ])
  t.equal(await c.invoke('Join', 'still-works').then(() => 'ok'), 'ok', 'the connection is still open')
})

t.test('a backplane that throws instead of rejecting still gives group calls a rejection', async (t) => {
  const bus = new MemoryBus()
  const throwing = (): Backplane => {
    const inner = memoryBackplane(bus)
    return {
      ...inner,
      subscribe (channel, onMessage) {
        if (channel.includes('group')) throw new Error('this backplane refuses group channels')
        return inner.subscribe(channel, onMessage)
      }
    }
  }
  const { baseUrl } = await startApp(t, (app) => { app.mapHub('/hub', hub) }, { backplane: throwing() })
  const c = await connect(t, `${baseUrl}/hub`)
  t.same(await c.invoke('Join', 'news'), { call: 'groups.add', threw: false, message: 'this backplane refuses group channels' })
})
