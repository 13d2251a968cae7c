/** Socket.IO 4 over HTTP long polling only (engine.io's `polling` transport; server in ./socketio-app.ts). */
import { serveSocketIo } from './socketio-app.js'

serveSocketIo('polling')
