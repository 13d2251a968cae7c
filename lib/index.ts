import { plugin } from './plugin.js'

export default plugin
export { plugin as signalr }
export { defineHub, clientStream } from './hub/define-hub.js'
export type { HubDefinitionInput } from './hub/define-hub.js'
export { HubError, SerializationError, SignalRError, codes as errorCodes } from './errors.js'
export type { ErrorCode } from './errors.js'
export type { Backplane } from './backplane/backplane.js'
export { MemoryBus, memoryBackplane } from './backplane/memory.js'
export type { SignalRPluginOptions, MapHubOptions, SignalRDecorator } from './plugin.js'
export type { HubOptions, TransportName } from './options.js'
export type { RateLimit } from './dispatcher/rate-limit.js'
export type { ProtocolName } from './protocol/index.js'
export type { HubContext } from './hub/hub-context.js'
export type { HubHooks, HookName, InvocationEvent, InvocationResultEvent } from './hub/hooks.js'
export type { AsyncApiInfo } from './hub/asyncapi.js'
export type { ExplorerOptions } from './explorer/explorer.js'
export type { TelemetryOptions } from './telemetry.js'
export type { InjectOptions } from './inject.js'
export type {
  AnyHubDefinition, ArgSchema, ArgSchemas, ClientMethodSpec, ClientProxy, ClientSpec, ClientStreamSchema,
  GroupManager, Hub, HubCallerClients, HubClients, HubDefinition, HubLifecycle, InferArg, InferClientArgs,
  InferClientResult, InferHandlerArgs, InferHubClient, InferHubMethods, InferInputArg, InferInputArgs,
  InferMethodArgs, InferMethodResult, InferStreamItem, MethodDefinition, SingleClientProxy, TransportKind,
  UntypedClient
} from './hub/types.js'
