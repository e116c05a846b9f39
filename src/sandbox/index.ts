// The sandbox's public surface, in groups; src/index.ts re-exports from here. Everything else stays internal.

// Vocabulary
export type {
  NamespaceSupport,
  ProbeRecord,
  RestrictionModel,
  SandboxBackend,
  SandboxBackendChoice,
  SandboxCapabilities,
  SandboxGap,
  SandboxInfo,
  SandboxMode,
  SandboxPolicy,
} from "./types.js";
export { ALL_NAMESPACES, DEFAULT_SANDBOX_POLICY, RESTRICTION_MODELS } from "./types.js";

// Detection
export { detectSandbox, type DetectOptions } from "./detect.js";

// Policy → argv (for the launch)
export { buildBwrapArgs, wrapWithBwrap, PRIVATE_HOME, type BwrapPaths } from "./bwrap-policy.js";
export { guardConfigPaths, type GuardOptions } from "./path-guard.js";
export { listGpuDevices, readSystemLinks, resolvePythonInstall } from "./host.js";
export {
  buildLandlockRules,
  encodeLandlockRules,
  LANDLOCK_ENV,
  type LandlockPaths,
  type LandlockRules,
} from "./landlock-policy.js";

// Choosing and preparing a launch
export { chooseSandbox, cannotEnforce, type SandboxChoice } from "./choose.js";
export { resolveSandboxPolicy } from "./resolve-policy.js";
export { prepareSandbox, type PreparedSandbox, type SandboxLaunch } from "./prepare.js";
