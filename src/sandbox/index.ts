// The sandbox's public surface, in groups; src/index.ts re-exports from here. Everything else stays internal.

// Vocabulary
export type { NamespaceSupport, ProbeRecord, RestrictionModel, SandboxBackend, SandboxCapabilities, SandboxGap, SandboxMode, SandboxPolicy } from "./types.js";
export { ALL_NAMESPACES, DEFAULT_SANDBOX_POLICY, RESTRICTION_MODELS } from "./types.js";

// Detection
export { detectSandbox, type DetectOptions } from "./detect.js";

// Policy → argv (for the launch)
export { buildBwrapArgs, wrapWithBwrap, PRIVATE_HOME, type BwrapPaths } from "./bwrap-policy.js";
export { guardConfigPaths, type GuardOptions } from "./path-guard.js";
export { listGpuDevices, readSystemLinks, resolvePythonInstall } from "./host.js";

// Doctor
export { buildDoctorReport, runDoctor, type DoctorGap, type DoctorReport } from "./doctor.js";
export { formatDoctorJson, formatDoctorText } from "./doctor-format.js";
