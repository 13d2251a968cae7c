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
export type { ProtocolName, ProtocolOption } from './protocol/index.js'
export { defineHubProtocol } from './protocol/registry.js'
export type { HubProtocolDefinition, RecordFraming, RecordSplitter } from './protocol/hub-protocol.js'
export { recordSeparatorFraming } from './protocol/text-framing.js'
export { frameBinary, lengthPrefixFraming } from './protocol/binary-framing.js'
export { ProtocolError } from './protocol/protocol-error.js'
export { MessageType } from './protocol/messages.js'
export type {
  AckMessage, CancelInvocationMessage, CloseMessage, CompletionMessage, Headers as HubMessageHeaders, HubMessage,
  InvocationMessage, PingMessage, SequenceMessage, StreamInvocationMessage, StreamItemMessage
} from './protocol/messages.js'
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
