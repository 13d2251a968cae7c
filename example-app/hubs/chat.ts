/**
 * The chat hub from the ASP.NET Core SignalR tutorial, as a fastify-signalr
 * hub definition. Every connection joins the "SignalR Users" group when it
 * connects, so SendMessageToGroups reaches everyone who is online.
 */
import { z } from 'zod'
import { defineHub, HubError } from '../../lib/index.js'

export const CHAT_GROUP = 'SignalR Users'

const user = z.string().min(1).max(100)
const message = z.string().max(4000)

// The schema allows an empty or blank message on purpose: rejecting it with a
// HubError shows how a handler sends its own error text back to the caller.
function assertNotBlank (text: string): void {
  if (text.trim() === '') throw new HubError('Message must not be empty')
}

export const chat = defineHub({
  name: 'chat',
  client: {
    ReceiveMessage: [z.string(), z.string()]
  },
  methods: {
    SendMessage: {
      args: [user, message],
      async handler (hub, user, message) {
        assertNotBlank(message)
        await hub.clients.all.send('ReceiveMessage', user, message)
      }
    },
    SendMessageToCaller: {
      args: [user, message],
      async handler (hub, user, message) {
        assertNotBlank(message)
        await hub.clients.caller.send('ReceiveMessage', user, message)
      }
    },
    SendMessageToGroups: {
      args: [user, message],
      async handler (hub, user, message) {
        assertNotBlank(message)
        await hub.clients.groups([CHAT_GROUP]).send('ReceiveMessage', user, message)
      }
    }
  },
  async onConnected (hub) {
    await hub.groups.add(hub.connectionId, CHAT_GROUP)
  }
})
