// The live monitor: snapshots pushed by the explorer's own hub once a second.
/* global signalR */
import { el } from './form.js'

let connection = null

function counts (record) {
  const entries = Object.entries(record)
  return entries.length === 0 ? '–' : entries.map(([key, n]) => `${key} ${n}`).join(', ')
}

function since (at) {
  const seconds = Math.max(0, Math.round((Date.now() - at) / 1000))
  const time = new Date(at).toLocaleTimeString([], { hour12: false })
  if (seconds < 60) return `${time} (${seconds}s)`
  if (seconds < 3600) return `${time} (${Math.floor(seconds / 60)}m)`
  return `${time} (${Math.floor(seconds / 3600)}h)`
}

function table (caption, headers, rows, empty) {
  if (rows.length === 0) return el('p', { class: 'muted', text: empty })
  return el('div', { class: 'table-wrap', tabindex: '0', role: 'region', 'aria-label': caption },
    el('table', {},
      el('caption', { text: caption }),
      el('thead', {}, el('tr', {}, ...headers.map((h) => el('th', { scope: 'col', text: h })))),
      el('tbody', {}, ...rows)))
}

function cell (text, attrs = {}) { return el('td', { ...attrs, text: String(text) }) }

function render (snapshot) {
  const root = document.getElementById('monitor-content')
  document.getElementById('monitor-scope').textContent = snapshot.scaled
    ? 'A backplane is in use: this view shows the connections, groups and traffic of this server only. Each server has its own monitor.'
    : 'Everything on this server.'
  const totals = snapshot.hubs.reduce((sum, hub) => {
    sum.invocations += hub.rates.invocations
    sum.received += hub.rates.received
    sum.sent += hub.rates.sent
    sum.errors += hub.totals.errors
    sum.slow += hub.totals.slowClientCloses
    return sum
  }, { invocations: 0, received: 0, sent: 0, errors: 0, slow: 0 })
  const tiles = [
    ['Connections', snapshot.totalConnections, 'stat-connections'],
    ['Invocations/s', totals.invocations.toFixed(1), 'stat-invocations'],
    ['Messages in/s', totals.received.toFixed(1), 'stat-received'],
    ['Messages out/s', totals.sent.toFixed(1), 'stat-sent'],
    ['Errors', totals.errors, 'stat-errors'],
    ['Slow-client closes', totals.slow, 'stat-slow']
  ]
  const groups = snapshot.hubs.flatMap((hub) => hub.groups.map(([name, members]) => el('tr', {}, cell(hub.name), cell(name), cell(members))))
  const users = snapshot.hubs.flatMap((hub) => hub.users.map(([id, n]) => el('tr', {}, cell(hub.name), cell(id), cell(n))))
  const connections = snapshot.connections.map((c) => el('tr', { 'data-connection-id': c.id },
    cell(c.id, { class: 'mono' }), cell(c.hub), cell(c.user ?? '–'), cell(c.transport), cell(c.protocol ?? '–'),
    cell(since(c.connectedAt)), cell(c.groups.join(', ') || '–'),
    el('td', {}, el('button', {
      type: 'button',
      class: 'small danger',
      text: 'Close',
      'aria-label': `Close connection ${c.id}`,
      onclick: (event) => closeConnection(c.id, event.target)
    }))))
  // Keep focus on the same control across the re-render, for keyboard users.
  const focused = document.activeElement?.closest?.('#monitor-content') ? document.activeElement.getAttribute('aria-label') : null
  root.replaceChildren(
    el('ul', { class: 'tiles' }, ...tiles.map(([label, value, id]) => el('li', { id }, el('span', { class: 'tile-value', text: String(value) }), el('span', { class: 'tile-label', text: label })))),
    el('h3', { text: 'Hubs' }),
    table('Connections and traffic per hub', ['Hub', 'Connections', 'Transports', 'Protocols', 'Invocations/s', 'In/s', 'Out/s', 'Errors', 'Slow closes'],
      snapshot.hubs.map((hub) => el('tr', { 'data-hub': hub.name },
        cell(hub.name), cell(hub.connections), cell(counts(hub.transports)), cell(counts(hub.protocols)),
        cell(hub.rates.invocations), cell(hub.rates.received), cell(hub.rates.sent), cell(hub.totals.errors), cell(hub.totals.slowClientCloses))),
      'No hubs are mapped.'),
    el('div', { class: 'columns two' },
      el('section', {}, el('h3', { text: 'Groups' }), table('Groups and their members', ['Hub', 'Group', 'Members'], groups, 'No groups.')),
      el('section', {}, el('h3', { text: 'Users' }), table('Users and their connections', ['Hub', 'User', 'Connections'], users, 'No signed-in users.'))),
    el('h3', { text: `Connections (${snapshot.totalConnections}${snapshot.connections.length < snapshot.totalConnections ? `, first ${snapshot.connections.length} listed` : ''})` }),
    table('Open connections', ['Id', 'Hub', 'User', 'Transport', 'Protocol', 'Connected since', 'Groups', 'Action'], connections, 'No connections.'))
  if (focused) root.querySelector(`[aria-label="${CSS.escape(focused)}"]`)?.focus()
  document.getElementById('monitor-updated').textContent = `Updated ${new Date(snapshot.at).toLocaleTimeString([], { hour12: false })}`
}

async function closeConnection (id, button) {
  button.disabled = true
  const closed = await connection.invoke('CloseConnection', id).catch(() => false)
  document.getElementById('monitor-message').textContent = closed ? `Closed connection ${id}.` : `Connection ${id} was already gone.`
  render(await connection.invoke('GetSnapshot'))
}

/** Connects once; later calls (switching back to the tab) keep the same connection. */
export function startMonitor (base, token) {
  if (connection !== null) return
  const status = document.getElementById('monitor-status')
  connection = new signalR.HubConnectionBuilder()
    .withUrl(`${base}/monitor`, { accessTokenFactory: () => token() })
    .withAutomaticReconnect()
    .configureLogging(signalR.LogLevel.None)
    .build()
  connection.on('Snapshot', render)
  connection.onreconnecting(() => { status.textContent = 'Reconnecting…'; status.dataset.state = 'connecting' })
  connection.onreconnected(() => { status.textContent = 'Live'; status.dataset.state = 'connected' })
  connection.onclose(() => { status.textContent = 'Disconnected'; status.dataset.state = 'disconnected' })
  connection.start()
    .then(async () => {
      status.textContent = 'Live'
      status.dataset.state = 'connected'
      render(await connection.invoke('GetSnapshot'))
    })
    .catch((error) => { status.textContent = `Could not connect: ${error.message}`; status.dataset.state = 'disconnected'; connection = null })
}
