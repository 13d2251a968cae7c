/**
 * Runs the example chat app: `npm start`, then open the printed URL in two
 * browser tabs. PORT and HOST override the defaults (3000, 127.0.0.1).
 */
import { build } from './app.js'

const port = Number(process.env.PORT ?? 3000)
const host = process.env.HOST ?? '127.0.0.1'

const app = await build({ logger: true })

// `once`: a second Ctrl-C during a slow shutdown falls through to Node's
// default handler and ends the process at once.
for (const signal of ['SIGINT', 'SIGTERM'] as const) {
  process.once(signal, () => {
    app.log.info({ signal }, 'shutting down')
    app.close().then(
      () => process.exit(0),
      (err: unknown) => {
        app.log.error(err, 'error while shutting down')
        process.exit(1)
      }
    )
  })
}

try {
  const address = await app.listen({ port, host })
  app.log.info(`chat example ready: open ${address} in two browser tabs`)
  app.log.info(`hub explorer and live monitor: ${address}/signalr (from this machine only)`)
} catch (err) {
  app.log.error(err, 'could not start the chat example')
  process.exit(1)
}
