// The chat page. Plain browser JavaScript: `signalR` is the global defined by
// /signalr.js, the official client's browser bundle.
'use strict'

const userInput = document.getElementById('user')
const messageInput = document.getElementById('message')
const form = document.getElementById('chat-form')
const buttons = {
  SendMessage: document.getElementById('send-all'),
  SendMessageToCaller: document.getElementById('send-caller'),
  SendMessageToGroups: document.getElementById('send-groups')
}
const messageList = document.getElementById('messages')
const statusLine = document.getElementById('status')
const errorArea = document.getElementById('error')

// `?transport=longPolling` (or serverSentEvents, webSockets) pins one
// transport, so the HTTP fallbacks can be tried from a browser that has
// WebSockets. Without it the client negotiates the best one.
function pinnedTransport () {
  const name = new URLSearchParams(location.search).get('transport')
  if (!name) return undefined
  const value = signalR.HttpTransportType[name[0].toUpperCase() + name.slice(1)]
  // The enum maps numbers back to names too; only a name gives a number.
  return typeof value === 'number' ? value : undefined
}

const builder = new signalR.HubConnectionBuilder()
const transport = pinnedTransport()
const connection = (transport === undefined ? builder.withUrl('/chathub') : builder.withUrl('/chathub', transport))
  .withAutomaticReconnect()
  .build()

function setStatus (state, text) {
  statusLine.dataset.state = state
  statusLine.textContent = text
  const connected = state === 'connected'
  for (const button of Object.values(buttons)) button.disabled = !connected
}

function showError (text) {
  errorArea.textContent = text
  errorArea.hidden = text === ''
}

// textContent only: messages come from other users and must never be parsed
// as HTML.
connection.on('ReceiveMessage', (user, message) => {
  const item = document.createElement('li')
  const name = document.createElement('span')
  name.className = 'user'
  name.textContent = user
  const text = document.createElement('span')
  text.textContent = message
  item.append(name, text)
  messageList.append(item)
  item.scrollIntoView({ block: 'nearest' })
})

connection.onreconnecting(() => setStatus('reconnecting', 'Reconnecting…'))
connection.onreconnected(() => setStatus('connected', 'Connected'))
connection.onclose(() => setStatus('disconnected', 'Disconnected. Reload the page to reconnect.'))

async function send (method) {
  showError('')
  try {
    await connection.invoke(method, userInput.value, messageInput.value)
  } catch (err) {
    // A HubError thrown by the hub, or a failed argument schema, arrives here
    // with the server's text as the message.
    showError(err instanceof Error ? err.message : String(err))
  }
}

form.addEventListener('submit', (event) => {
  event.preventDefault()
  send('SendMessage')
})
buttons.SendMessageToCaller.addEventListener('click', () => send('SendMessageToCaller'))
buttons.SendMessageToGroups.addEventListener('click', () => send('SendMessageToGroups'))

// withAutomaticReconnect only covers connections that were once up, so the
// first start retries on its own.
async function start () {
  setStatus('connecting', 'Connecting…')
  try {
    await connection.start()
    setStatus('connected', 'Connected')
  } catch (err) {
    setStatus('disconnected', 'Could not connect, retrying in 5 seconds…')
    setTimeout(start, 5000)
  }
}

start()
