// The public surface of pyisolate, in groups. Anything not named here is internal.

// Host API
export { ExtensionManager } from "./manager.js";
export { Extension, type ExtensionState, type ExtensionProxy } from "./extension.js";
export type {
  ExtensionOptions,
  ManagerOptions,
  CallOptions,
  SandboxOptions,
  SandboxMode,
  Installer,
  InstallerBackend,
  SharedRuntimeOptions,
} from "./config/options.js";
export { kwargs, type Kwargs } from "./rpc/kwargs.js";
export type { StreamOptions } from "./rpc/stream-call.js";
export { callingExtension } from "./caller.js";
export { ExtensionPool, type PoolWorker, type PoolEventMap, type PoolStreamOptions } from "./pool/pool.js";
export type { PoolOptions, PoolCallOptions } from "./pool/options.js";
export type { PlacementOptions, RayClusterOptions, RayPlacement } from "./ray/options.js";
export type { ProtocolLimits } from "./rpc/limits.js";
export type { OutputLimits } from "./output/output-limits.js";
export type { DroppedOutput } from "./output/flood-gate.js";

// Typed extensions (docs/api.md): Remote<Api> for ext.proxy, typed events; `pyisolate types` writes the Api
export type { Remote, RemoteMethod, RemoteValue, UntypedApi, Shape, Yielded } from "./types/remote.js";
export type { HostEventArgs, ExtensionEventMap, UntypedEvents } from "./types/events.js";

// Resilience: restarts and health (docs/reliability.md)
export type { RestartOptions } from "./lifecycle/restart-policy.js";
export type { HealthOptions } from "./lifecycle/health.js";

// Environments
export type { ProgressEvent, Environment } from "./env/builder.js";
export type { InstallCounts } from "./env/types.js";
export type { SharedRuntimeLink } from "./env/shared-runtime.js";
export type { ManagerPruneOptions, PruneResult } from "./prune/manager-prune.js";
export type { PlannedRemoval } from "./prune/plan.js";
export type { PruneSkip } from "./prune/classify.js";

// Sandbox detection and the compatibility matrix (\`pyisolate doctor\`)
export {
  detectSandbox,
  RESTRICTION_MODELS,
  type SandboxCapabilities,
  type RestrictionModel,
  type SandboxBackend,
  type SandboxGap,
  type DetectOptions,
  type SandboxInfo,
} from "./sandbox/index.js";
export { runDoctor, formatDoctorText, formatDoctorJson, type DoctorReport, type DoctorGap } from "./doctor/index.js";

// Tensors (docs/tensors.md)
export { Tensor, type TensorOptions, type TensorLayout, type TensorValue } from "./tensor/tensor.js";
export { CudaTensor } from "./tensor/cuda.js";
export { liveCudaExports, type CudaExportRecord } from "./tensor/cuda-ledger.js";
export { DTYPES, type DType, type TensorData } from "./tensor/dtype.js";
export { liveSegments, type SegmentRecord } from "./tensor/ledger.js";

// Errors
export {
  PyIsolateError,
  ConfigError,
  RemoteError,
  ExtensionCrashedError,
  ExtensionLoadError,
  EnvironmentBuildError,
  ProtocolError,
  CallAbortedError,
  ExtensionClosedError,
  SandboxUnavailableError,
  ExtensionLimitError,
  ExtensionUnresponsiveError,
  UnknownMethodError,
  RayClusterError,
  type ExitInfo,
} from "./errors.js";
export type { ResourceLimits, LimitName } from "./limits/types.js";

// Logging
export { createConsoleLogger, type Logger, type LogLevel } from "./logger.js";

// Protocol
export { PROTOCOL_VERSION } from "./rpc/protocol.js";
export { RUNTIME_VERSION } from "./version.js";
