// The options a user passes to ExtensionManager and to load(), as public types.

import type { ProgressEvent } from "../env/builder.js";
import type { Logger } from "../logger.js";
import type { ResourceLimits } from "../limits/types.js";
import type { HealthOptions } from "../lifecycle/health.js";
import type { RestartOptions } from "../lifecycle/restart-policy.js";
import type { ProtocolLimits } from "../rpc/limits.js";
import type { OutputLimits } from "../output/output-limits.js";
import type { ClusterOptions } from "../remote/options.js";
import type { PlacementOptions } from "../ray/options.js";
import type { Installer, SandboxBackendChoice, SandboxMode, TensorTransportOption, Transport } from "../vocabulary.js";

// The vocabularies are lists in ../vocabulary.ts; the types here are derived from them.
export type { Installer, SandboxMode };
/** @deprecated the old name of `Installer`. */
export type InstallerBackend = Installer;
/** Per-call options: one definition, the RPC peer's. */
export type { CallOptions } from "../rpc/peer.js";

export interface SandboxOptions {
  /**
   * `required` (the default): fail the load with SandboxUnavailableError if no sandbox can enforce the policy;
   * `preferred`: warn once per manager and take the best available (bwrap, bwrap without a user namespace,
   * Landlock, none); `disabled`: explicit opt-out, logged.
   */
  mode?: SandboxMode;
  /** `auto` (default): the best backend this host offers; `bwrap` or `landlock`: that one only (with `required`). */
  backend?: SandboxBackendChoice;
  /** Give the extension the network (default false: no TCP, and under bwrap an empty network namespace). */
  network?: boolean;
  /** Folders the extension may write, relative to the extension folder or absolute; refused if they open the host up. */
  writablePaths?: string[];
  /** Extra folders the extension may read, relative to the extension folder or absolute. */
  readonlyPaths?: string[];
  /** Expose the GPU device nodes (and what CUDA reads under /sys) to the extension (default false). */
  gpu?: boolean;
  /**
   * Under the Landlock backend, allow Unix sockets (default false; always with `gpu: true`, which CUDA needs):
   * multiprocessing.Manager, the forkserver start method and fd passing between workers need them, and so
   * does connecting to any Unix socket by path the host user can reach. No effect under bwrap.
   */
  unixSockets?: boolean;
}

/** Options of one extension, given to `manager.load()` (and partly by its pyisolate.yaml). */
export interface ExtensionOptions {
  /** Unique name; it becomes the venv folder name, so it must be a plain file name. */
  name: string;
  /** A Python package folder (it has an `__init__.py`). */
  modulePath: string;
  /** pip requirement strings, e.g. `"numpy==1.26.4"`. Options such as `--index-url` are refused here. */
  dependencies?: string[];
  /**
   * Interpreter for the venv: `"3.11"`, `"3.11.7"` or a path. Default: `python3` on PATH. pyisolate.yaml may give a
   * version only: a path there would be a program the host runs.
   */
  python?: string;
  /**
   * Extra environment variables for the extension process (the rest of the host's is not passed). From code any
   * name goes; the extension's pyisolate.yaml may set only tuning knobs (`OMP_NUM_THREADS`, ...) and `fileEnv`.
   */
  env?: Record<string, string>;
  /**
   * Variable names the extension's own pyisolate.yaml may set in `env`, beyond the built-in tuning knobs. Names read
   * before the sandbox (`LD_*`, `PYTHON*`, `GCONV_PATH`, `PATH`, proxies, ...) are refused here.
   */
  fileEnv?: string[];
  /**
   * Host folders or files (absolute) that the extension's pyisolate.yaml may install as local dependencies
   * (`name @ file:///...` or a plain path), besides real ones strictly inside its own folder. Each is bound read-only
   * into the install sandbox. Dependencies given in code may name any local path without it.
   */
  fileDependencyPaths?: string[];
  /**
   * The host services (`manager.provide()` names) this extension may call; default: every provided service.
   * A call to any other fails in Python with the LookupError of an unknown service. The extension's
   * pyisolate.yaml may narrow the list, never widen it.
   */
  services?: string[];
  /** `"package.module:ClassName"` when the extension class is not the one ExtensionBase subclass. */
  extensionClass?: string;
  /** Package index options for uv/pip. */
  indexUrl?: string;
  extraIndexUrls?: string[];
  findLinks?: string[];
  /** Which installer builds the venv; `auto` (default) takes uv when it is on PATH, else venv + pip. */
  installer?: Installer;
  /** @deprecated the old name of `installer` (it read like `sandbox.backend`); accepted with one warning. */
  backend?: Installer;
  /**
   * A key of the manager's `sharedRuntimes`: its packages are importable after the venv's own (read-only, not
   * copied). Default none (`null` says so over a pyisolate.yaml): the venv is sealed.
   */
  sharedRuntime?: string | null;
  /**
   * Run the extension's hooks and every call under `torch.inference_mode()`, as Python pyisolate does with
   * `share_torch=True`. Default: on when the extension names a `sharedRuntime` and torch imports there; `false` turns
   * it off (an extension that trains). A code option only. Without torch in the extension it does nothing.
   */
  inferenceMode?: boolean;
  /**
   * Build the venv with `--system-site-packages`: the base interpreter's own packages (a CUDA torch installed in the
   * system Python, on a machine without network) are importable after the venv's own. Default false: the venv sees
   * only what it installed. Widens what the extension sees; part of the venv's fingerprint. An extension that names a
   * layer built with it inherits it (and cannot say false).
   */
  systemSitePackages?: boolean;
  sandbox?: SandboxOptions;
  /**
   * How numpy arrays, torch tensors and `Tensor`s travel: `shm` passes shared memory segments (zero-copy),
   * `copy` sends their bytes inside the frame, `auto` (default) is `shm` when the native addon works.
   */
  tensorTransport?: TensorTransportOption;
  /**
   * Bytes (`Uint8Array`, Buffer, Python `bytes`) of this many or more cross as a sealed memfd beside the frame (one
   * copy by the sender; the host maps what it receives), wherever tensors travel as shared memory; smaller ones ride
   * in the frame. Default 256 KiB; `Infinity` keeps every bytes value in the frame (docs/protocol.md, Bytes).
   */
  bytesMemfdThreshold?: number;
  /**
   * How long, in microseconds, the extension's event loop polls for the next message before it sleeps (0 to 1000,
   * default 100; 0: it sleeps at once). A message that comes within it skips the sleep and the wake-up, which on a VM
   * whose idle vCPUs halt cost a call 50 µs (docs/decisions.md, 63). The window adapts: it closes for an extension
   * whose messages come further apart, so an idle one spends nothing. A code option only.
   */
  idlePollMicros?: number;
  /**
   * Let torch CUDA tensors cross as CUDA IPC handles (docs/tensors.md, CUDA tensors): the extension gets
   * `PYISOLATE_ENABLE_CUDA_IPC=1`. Default: on when the host process has `PYISOLATE_ENABLE_CUDA_IPC=1` (pyisolate's
   * switch), else off (CUDA tensors are copied through the host). Needs `sandbox.gpu` under a sandbox. A code option
   * only; the pyisolate.yaml key `share_cuda_ipc` asks for it where the code gave the GPU.
   */
  cudaIpc?: boolean;
  /**
   * What this extension's frames and output may cost the host (docs/protocol.md, Limits): frame, header and
   * attachment sizes, fds per frame, shared segments held, line length. Unset ones take their defaults; past one,
   * the extension is stopped with a ProtocolError naming it. A code option only: a pyisolate.yaml cannot set it.
   */
  protocolLimits?: Partial<ProtocolLimits>;
  /**
   * What the extension's process tree may use (docs/reliability.md, Limits): memory, CPU time, processes, open
   * files and the disk of its private HOME and tmp. Unset keys are unbounded; past one, the extension is stopped with
   * an ExtensionLimitError. Its pyisolate.yaml may set or lower a limit, never raise one the code set.
   */
  limits?: ResourceLimits;
  /**
   * Bring the extension back after a crash, a kill or a failed health check: the same venv and options, the same
   * Extension object (events `crash`, `restart`, `ready`). Off by default. A code option only.
   */
  restart?: RestartOptions;
  /**
   * The heartbeat that finds a hung extension (the GIL held in C code, a busy loop in a sync method) and treats it
   * as crashed with ExtensionUnresponsiveError. Off by default: a sync method that computes for minutes would count
   * as hung. `true` takes the defaults ({ intervalMs: 1000, timeoutMs: 30000 }). A code option only.
   */
  health?: HealthOptions | boolean;
  /**
   * How many stdout lines, stderr lines and events (each stream alone) and bytes a second this extension may pass
   * (default 2000 lines, 1 MiB, burst 4000). The excess is dropped, counted in `dropped` events on the Extension
   * and named once in a warning. A code option only.
   */
  output?: Partial<OutputLimits>;
  /**
   * How the host and the guest talk: `unix` (default) over inherited Unix sockets, `tcp` over TCP+TLS to the
   * manager's cluster listener (`cluster.listen`, else one on 127.0.0.1 opened for it), with tensors by value; the
   * guest runs here under the same sandbox (docs/cluster.md). A code option only.
   */
  transport?: Transport;
  /**
   * Where it runs: `{ ray: { numCpus, numGpus, resources } }` places it on the manager's Ray cluster (`cluster.ray`)
   * as a Ray job whose guest dials back over TCP+TLS (docs/cluster.md). Absent: on this machine. A code option only.
   */
  placement?: PlacementOptions;
  /** Default timeout of each call, in milliseconds (none by default). */
  callTimeoutMs?: number;
  /** How long the extension may take to import and answer the handshake (default 120 s). */
  startTimeoutMs?: number;
  /**
   * Environment build progress: each stage, each installer line, and while an install runs a `tick` at least every
   * 2 s with the elapsed time and what the installer told of packages and bytes so far.
   */
  onProgress?: (event: ProgressEvent) => void;
  /** This extension's own logger (default: the manager's); with one, its output lines go there too (see forwardOutput). */
  logger?: Logger;
  /** Abort the load (build or start). */
  signal?: AbortSignal;
}

/** One shared runtime layer: a venv built once under `venvRoot/.shared/<name>` and linked into the venvs that name it. */
export interface SharedRuntimeOptions {
  /** pip requirement strings, e.g. `"torch==2.13.0"`. */
  dependencies: string[];
  /** Interpreter for the layer; an extension that names the layer and no `python` of its own gets this one. */
  python?: string;
  indexUrl?: string;
  extraIndexUrls?: string[];
  findLinks?: string[];
  /** Which installer builds the layer (default: the manager's `installer`, else `auto`). */
  installer?: Installer;
  /** @deprecated the old name of `installer`; accepted with one warning. */
  backend?: Installer;
  /**
   * Build the layer with `--system-site-packages` (default false): its install and its users see the base
   * interpreter's packages. Every extension that names the layer gets it too (its packages may rely on them).
   */
  systemSitePackages?: boolean;
}

export interface ManagerOptions {
  /** Folder that holds one venv per extension. */
  venvRoot: string;
  /**
   * Where pyisolate's own messages go. Default: stderr, warnings and errors only (`PYISOLATE_LOG_LEVEL=info` for more).
   * Any object with debug/info/warn/error methods: `console`, pino, winston.
   */
  logger?: Logger;
  /**
   * Forward extension stdout/stderr lines, prefixed with the name, to the logger's `info` when the application gave
   * a logger (here or in load), else to the host's stderr; never to the host's stdout (default true). The `stdout`
   * and `stderr` events fire either way.
   */
  forwardOutput?: boolean;
  /** Default installer for every extension and layer (default `auto`). */
  installer?: Installer;
  /** @deprecated the old name of `installer`; accepted with one warning. */
  backend?: Installer;
  /** How long `stop()` waits for a clean exit before SIGTERM, then SIGKILL (default 5000 ms). */
  stopGraceMs?: number;
  /** Layers of packages (one torch for all) that extensions opt into with `sharedRuntime: "<name>"`. */
  sharedRuntimes?: Record<string, SharedRuntimeOptions>;
  /** Scale-out: `listen` opens the TLS listener guests connect back to (none exists unless asked; docs/cluster.md). */
  cluster?: ClusterOptions;
}
