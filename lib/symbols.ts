/** The method table `defineHub` attaches to a definition. */
export const kMethodTable = Symbol('fastify-signalr.methodTable')
/** Marks the result of `clientStream()`. */
export const kClientStream = Symbol('fastify-signalr.clientStream')
