// The hub explorer page: hubs and methods from the server's schemas, forms,
// invoke/send/stream through the official client, and a live log.
/* global signalR */
import { Bytes, OMITTED, bytesToBase64, constraintText, analyse, createField, el } from './form.js'
import { startMonitor } from './monitor.js'

const base = document.querySelector('meta[name="explorer-base"]').content
const state = { hubs: [], messagepack: false, selected: null, sessions: new Map(), token: '' }

// ------------------------------------------------------------------ tabs

const tabs = [...document.querySelectorAll('[role="tab"]')]
function selectTab (tab, focus = false) {
  for (const other of tabs) {
    const selected = other === tab
    other.setAttribute('aria-selected', String(selected))
    other.tabIndex = selected ? 0 : -1
    document.getElementById(other.getAttribute('aria-controls')).hidden = !selected
  }
  if (focus) tab.focus()
  if (tab.id === 'tab-monitor') startMonitor(base, () => state.token)
  history.replaceState(null, '', tab.id === 'tab-monitor' ? '#monitor' : '#explorer')
}
for (const tab of tabs) {
  tab.addEventListener('click', () => selectTab(tab))
  // Arrow keys move between tabs (WAI-ARIA tabs pattern).
  tab.addEventListener('keydown', (event) => {
    const step = event.key === 'ArrowRight' ? 1 : event.key === 'ArrowLeft' ? -1 : 0
    if (step !== 0) selectTab(tabs[(tabs.indexOf(tab) + step + tabs.length) % tabs.length], true)
  })
}

// ------------------------------------------------------------------ values

/** What the hub gets: bytes as Uint8Array with MessagePack, as base64 text with JSON (SignalR's own encoding). */
function toWire (value, protocol) {
  if (value instanceof Bytes) return protocol === 'messagepack' ? value.data : bytesToBase64(value.data)
  if (value instanceof Date || value === null || typeof value !== 'object') return value
  if (Array.isArray(value)) return value.map((item) => toWire(item, protocol))
  return Object.fromEntries(Object.entries(value).map(([key, item]) => [key, toWire(item, protocol)]))
}

function show (value) {
  if (value === undefined) return '(no result)'
  return JSON.stringify(value, (_key, v) => v instanceof Uint8Array ? `base64:${bytesToBase64(v)}` : v, 2)
}

const clock = () => new Date().toLocaleTimeString([], { hour12: false })
const ms = (start) => `${(performance.now() - start).toFixed(1)} ms`

function entry (list, kind, title, body, time) {
  const item = el('li', { class: `entry ${kind}` },
    el('div', { class: 'entry-head' }, el('span', { class: 'entry-kind', text: title }), el('span', { class: 'entry-time', text: time ?? clock() })),
    body === undefined ? null : el('pre', { text: body }))
  list.prepend(item)
  while (list.children.length > 200) list.lastElementChild.remove()
  return item
}

// ------------------------------------------------------------------ sessions (one connection per hub)

function session (hub) {
  let s = state.sessions.get(hub.path)
  if (!s) {
    s = { connection: null, status: 'disconnected', log: null, statusNode: null, connectButton: null, listeners: new Set() }
    state.sessions.set(hub.path, s)
  }
  return s
}

function setStatus (hub, status, detail = '') {
  const s = session(hub)
  s.status = status
  if (s.statusNode) {
    s.statusNode.textContent = status[0].toUpperCase() + status.slice(1) + (detail ? `: ${detail}` : '')
    s.statusNode.dataset.state = status
  }
  if (s.connectButton) s.connectButton.textContent = status === 'connected' || status === 'connecting' ? 'Disconnect' : 'Connect'
}

async function connect (hub, settings) {
  const s = session(hub)
  if (s.connection && s.status !== 'disconnected') return s.connection
  const options = {}
  if (settings.transport !== 'auto') options.transport = signalR.HttpTransportType[settings.transport]
  if (settings.token) options.accessTokenFactory = () => settings.token
  // The client names the transport it picked only in its log (its classes are minified).
  const logger = { log (_level, message) { const m = /Selecting transport '(\w+)'/.exec(message); if (m) s.transport = m[1] } }
  let builder = new signalR.HubConnectionBuilder().withUrl(hub.path, options).configureLogging(logger)
  if (settings.protocol === 'messagepack') builder = builder.withHubProtocol(new signalR.protocols.msgpack.MessagePackHubProtocol())
  const connection = builder.build()
  s.protocol = settings.protocol
  for (const method of hub.client) connection.on(method.name, (...args) => clientCall(hub, method, args))
  connection.onclose((error) => {
    if (s.connection !== connection) return
    setStatus(hub, 'disconnected', error ? error.message : '')
    entry(s.log, 'closed', 'Connection closed', error ? error.message : undefined)
  })
  s.connection = connection
  setStatus(hub, 'connecting')
  const started = performance.now()
  try {
    await connection.start()
  } catch (error) {
    s.connection = null
    setStatus(hub, 'disconnected', error.message)
    entry(s.log, 'error', 'Connect failed', error.message)
    throw error
  }
  setStatus(hub, 'connected', `${connection.connectionId} · ${s.transport ?? 'transport'} · ${settings.protocol}`)
  entry(s.log, 'info', `Connected (${ms(started)})`, `connection id ${connection.connectionId}`)
  return connection
}

/** A message from the server: logged, and for client results answered from the page. */
function clientCall (hub, method, args) {
  const s = session(hub)
  const item = entry(s.log, 'message', method.name, show(args))
  if (method.returns === null) return undefined
  item.classList.add('needs-answer')
  return new Promise((resolve, reject) => {
    const field = createField(method.returns, { label: `Result for ${method.name}` })
    const done = (text) => { form.replaceWith(el('p', { class: 'answered', text })); item.classList.remove('needs-answer') }
    const form = el('form', { class: 'answer', 'aria-label': `Answer ${method.name}` }, field.element,
      el('div', { class: 'buttons' },
        el('button', { type: 'submit', text: 'Reply' }),
        el('button', {
          type: 'button',
          class: 'secondary',
          text: 'Reply with error',
          onclick: () => { reject(new Error('Rejected from the explorer')); done('Answered with an error') }
        })))
    form.addEventListener('submit', (event) => {
      event.preventDefault()
      const result = field.read()
      if (result.errors.length > 0) return
      const value = result.value === OMITTED ? null : toWire(result.value, s.protocol)
      resolve(value)
      done(`Answered ${show(value)}`)
    })
    item.append(form)
    field.focus()
  })
}

// ------------------------------------------------------------------ rendering

function hubSlug (hub) { return hub.path.replace(/[^A-Za-z0-9]+/g, '-') }
function methodId (hub, method) { return `m${hubSlug(hub)}-${method.name}` }

function renderNav () {
  const list = document.getElementById('hub-list')
  list.replaceChildren(...state.hubs.map((hub) => el('li', { 'data-hub': hub.path },
    el('a', { href: `#hub${hubSlug(hub)}`, class: 'hub-link', onclick: (event) => { event.preventDefault(); selectHub(hub) } },
      el('span', { text: hub.name }), el('code', { text: hub.path })),
    el('ul', {}, ...hub.methods.map((method) => el('li', { 'data-method': method.name.toLowerCase() },
      el('a', {
        href: `#${methodId(hub, method)}`,
        onclick: (event) => { event.preventDefault(); selectHub(hub, method) },
        text: method.name
      }), method.stream ? el('span', { class: 'badge', text: 'stream' }) : null))))))
}

function filterNav (query) {
  const q = query.trim().toLowerCase()
  for (const hubItem of document.querySelectorAll('#hub-list > li')) {
    const hubMatches = hubItem.dataset.hub.toLowerCase().includes(q) || hubItem.querySelector('.hub-link span').textContent.toLowerCase().includes(q)
    let any = false
    for (const methodItem of hubItem.querySelectorAll('li[data-method]')) {
      const match = q === '' || hubMatches || methodItem.dataset.method.includes(q)
      methodItem.hidden = !match
      any ||= match
    }
    hubItem.hidden = !(hubMatches || any)
  }
  for (const card of document.querySelectorAll('.method')) {
    card.hidden = q !== '' && !card.dataset.method.toLowerCase().includes(q) && !card.dataset.hub.toLowerCase().includes(q)
  }
}

function selectHub (hub, method) {
  if (state.selected !== hub) {
    state.selected = hub
    renderHub(hub)
    filterNav(document.getElementById('search').value)
  }
  for (const link of document.querySelectorAll('#hub-list a')) link.removeAttribute('aria-current')
  document.querySelector(`#hub-list li[data-hub="${CSS.escape(hub.path)}"] > a`)?.setAttribute('aria-current', 'true')
  if (method) {
    const card = document.getElementById(methodId(hub, method))
    card.open = true
    card.scrollIntoView({ block: 'start' })
    card.querySelector('input, select, textarea, button')?.focus()
  }
}

function renderHub (hub) {
  const s = session(hub)
  const panel = document.getElementById('hub-panel')
  const transport = el('select', { id: 'transport', name: 'transport' },
    ...['auto', 'WebSockets', 'ServerSentEvents', 'LongPolling'].map((t) => el('option', { value: t, text: t === 'auto' ? 'Automatic' : t })))
  const protocol = el('select', { id: 'protocol', name: 'protocol' },
    el('option', { value: 'json', text: 'JSON' }),
    state.messagepack ? el('option', { value: 'messagepack', text: 'MessagePack' }) : null)
  const token = el('input', { id: 'token', name: 'token', type: 'password', autocomplete: 'off', placeholder: 'optional' })
  token.value = state.token
  token.addEventListener('input', () => { state.token = token.value })
  s.statusNode = el('output', { class: 'status', role: 'status', 'aria-live': 'polite' })
  s.connectButton = el('button', { type: 'submit', class: 'connect' })
  const settings = () => ({ transport: transport.value, protocol: protocol.value, token: token.value })
  s.settings = settings
  const connectForm = el('form', { class: 'connect-bar', 'aria-label': `Connection to ${hub.name}` },
    el('span', { class: 'pair' }, el('label', { for: 'transport', text: 'Transport' }), transport),
    el('span', { class: 'pair' }, el('label', { for: 'protocol', text: 'Protocol' }), protocol),
    el('span', { class: 'pair' }, el('label', { for: 'token', text: 'Access token' }), token),
    s.connectButton)
  connectForm.addEventListener('submit', (event) => {
    event.preventDefault()
    if (s.connection && s.status !== 'disconnected') void s.connection.stop()
    else connect(hub, settings()).catch(() => {})
  })
  s.log = s.log ?? el('ol', { class: 'log', id: 'log', 'aria-live': 'polite', 'aria-label': 'Messages from the server' })
  setStatus(hub, s.status)

  panel.replaceChildren(
    el('h2', { id: `hub${hubSlug(hub)}` }, el('span', { text: hub.name }), ' ', el('code', { text: hub.path })),
    connectForm, s.statusNode,
    el('div', { class: 'columns' },
      el('section', { class: 'methods', 'aria-labelledby': 'methods-title' },
        el('h3', { id: 'methods-title', text: `Methods (${hub.methods.length})` }),
        ...hub.methods.map((method, i) => renderMethod(hub, method, i === 0))),
      el('section', { class: 'side', 'aria-labelledby': 'log-title' },
        el('h3', { id: 'log-title', text: 'Live log' }),
        hub.client.length === 0
          ? el('p', { class: 'muted', text: 'This hub declares no client methods.' })
          : el('details', { class: 'client-methods' }, el('summary', { text: `Client methods (${hub.client.length})` }),
            el('ul', {}, ...hub.client.map((method) => el('li', {},
              el('code', { text: method.name }),
              el('small', { text: ` (${method.args.map((a) => constraintText(analyse(a).schema, analyse(a).kind)).join(', ')})${method.returns ? ' → returns a result' : ''}` }))))),
        el('button', { type: 'button', class: 'small secondary', text: 'Clear log', onclick: () => s.log.replaceChildren() }),
        s.log)))
}

function renderMethod (hub, method, open) {
  const fields = method.params.map((param, i) => {
    const name = param.kind === 'stream' ? `Argument ${i} (upload stream items)` : `Argument ${i}`
    const schema = param.kind === 'stream' ? { type: 'array', items: param.schema } : param.schema
    // SignalR sends every argument (the server checks the count), so an optional one still needs a value here.
    return { param, label: name, field: createField(schema, { label: name }) }
  })
  const results = el('ol', { class: 'results', 'aria-live': 'polite', 'aria-label': `Results of ${method.name}` })
  const summary = el('p', { class: 'form-error', role: 'alert', hidden: true })
  const buttons = method.stream
    ? [el('button', { type: 'submit', value: 'stream', text: 'Stream' })]
    : [el('button', { type: 'submit', value: 'invoke', text: 'Invoke' }), el('button', { type: 'submit', value: 'send', class: 'secondary', text: 'Send' })]
  const cancel = el('button', { type: 'button', class: 'secondary', text: 'Cancel stream', hidden: true })
  const form = el('form', { novalidate: true, 'aria-label': `Call ${method.name}` },
    ...fields.map((f) => f.field.element),
    fields.length === 0 ? el('p', { class: 'muted', text: 'No arguments.' }) : null,
    summary,
    el('div', { class: 'buttons' }, ...buttons, cancel))
  form.addEventListener('submit', (event) => {
    event.preventDefault()
    void call(hub, method, fields, event.submitter?.value ?? buttons[0].value, { results, summary, cancel })
  })
  return el('details', { class: 'method', id: methodId(hub, method), 'data-method': method.name, 'data-hub': hub.name, open },
    el('summary', {}, el('span', { class: 'method-name', text: method.name }),
      method.stream ? el('span', { class: 'badge', text: 'stream' }) : null,
      method.params.some((p) => p.kind === 'stream') ? el('span', { class: 'badge', text: 'upload' }) : null,
      method.returns ? el('small', { class: 'returns', text: `→ ${constraintText(analyse(method.returns).schema, analyse(method.returns).kind)}` }) : null),
    form, results)
}

async function call (hub, method, fields, how, ui) {
  const values = fields.map(({ field }) => field.read())
  const bad = fields.filter((_f, i) => values[i].errors.length > 0).map(({ label }) => label)
  ui.summary.hidden = bad.length === 0
  ui.summary.textContent = bad.length === 0 ? '' : `Not sent: ${bad.join(', ')} ${bad.length === 1 ? 'does' : 'do'} not match the schema.`
  if (bad.length > 0) {
    fields[fields.findIndex((_f, i) => values[i].errors.length > 0)].field.focus()
    return
  }
  const s = session(hub)
  let connection
  try {
    connection = await connect(hub, s.settings())
  } catch (error) {
    entry(ui.results, 'error', 'Not connected', error.message)
    return
  }
  const protocol = s.protocol
  const uploads = []
  const args = fields.map(({ param }, i) => {
    const value = values[i].value
    if (param.kind === 'stream') {
      const subject = new signalR.Subject()
      uploads.push({ subject, items: value.map((item) => toWire(item, protocol)) })
      return subject
    }
    return toWire(value, protocol)
  })
  const sent = args
  const started = performance.now()
  const shown = show(sent.map((a) => a instanceof signalR.Subject ? '(upload stream)' : a))
  entry(ui.results, 'call', `${how} ${method.name}`, shown)
  const feed = () => {
    for (const { subject, items } of uploads) {
      for (const item of items) subject.next(item)
      subject.complete()
    }
  }
  try {
    if (how === 'stream') {
      let count = 0
      await new Promise((resolve) => {
        const subscription = connection.stream(method.name, ...sent).subscribe({
          next: (item) => entry(ui.results, 'item', `item ${++count}`, show(item), `+${ms(started)}`),
          complete: () => { entry(ui.results, 'ok', `stream complete (${count} items)`, undefined, ms(started)); resolve() },
          error: (error) => { entry(ui.results, 'error', 'stream error', error.message, ms(started)); resolve() }
        })
        ui.cancel.hidden = false
        ui.cancel.onclick = () => { subscription.dispose(); entry(ui.results, 'info', 'stream cancelled', undefined, ms(started)); resolve() }
        feed()
      })
      ui.cancel.hidden = true
    } else if (how === 'send') {
      const pending = connection.send(method.name, ...sent)
      feed()
      await pending
      entry(ui.results, 'ok', 'sent', undefined, ms(started))
    } else {
      const pending = connection.invoke(method.name, ...sent)
      feed()
      const result = await pending
      entry(ui.results, 'ok', 'result', show(result), ms(started))
    }
  } catch (error) {
    entry(ui.results, 'error', 'error', error.message, ms(started))
  }
}

// ------------------------------------------------------------------ start

document.getElementById('search').addEventListener('input', (event) => filterNav(event.target.value))

async function load () {
  const response = await fetch(`${base}/api/hubs`, { headers: { accept: 'application/json' } })
  if (!response.ok) throw new Error(`${response.status} ${await response.text()}`)
  const data = await response.json()
  state.hubs = data.hubs
  state.messagepack = data.messagepack && !!signalR.protocols?.msgpack
  renderNav()
  document.body.dataset.ready = 'true'
  if (state.hubs.length === 0) {
    document.getElementById('hub-panel').replaceChildren(el('p', { text: 'No hubs are mapped yet.' }))
  } else {
    selectHub(state.hubs[0])
  }
}

load().catch((error) => {
  document.getElementById('hub-panel').replaceChildren(el('p', { class: 'form-error', role: 'alert', text: `Could not load the hubs: ${error.message}` }))
})
if (location.hash === '#monitor') selectTab(document.getElementById('tab-monitor'))
