export { RpcServer, type EndpointTable, type RpcEndpoint, type RequestContext, type RpcServerOptions } from './server';
export { RpcClient, type CallOptions, type CastOptions, type RpcClientOptions } from './client';
export { KeyedMutex, Semaphore } from './keyed-mutex';
export { RPC_API_VERSION, ENVELOPE_VERSION, type RpcContext } from './envelope';
export { encodeFailure, decodeFailure, remoteClassOf } from './failures';
export { loadRpcSchema } from './schemas';
