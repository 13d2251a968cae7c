/** Socket.IO 4 over the WebSocket transport only (server in ./socketio-app.ts). */
import { serveSocketIo } from './socketio-app.js'

serveSocketIo('websocket')
