// The Ray options, as types: `cluster.ray` of ExtensionManager and `placement.ray` of load() (checks: options-check.ts).

/** `new ExtensionManager({ cluster: { ray } })`: the Ray cluster whose Jobs API places extensions. A code option only. */
export interface RayClusterOptions {
  /** The dashboard's address, where the Jobs API answers: "http://127.0.0.1:8265". */
  address: string;
  /**
   * pip's options on the node for the extension's dependencies (default `["--only-binary", ":all:"]`: wheels only, so
   * no package's build code runs on the node outside the sandbox). Add `--index-url`, `--find-links` here for a
   * private index the nodes can reach.
   */
  pipInstallOptions?: string[];
  /** How often the job's status is read, in milliseconds (default 500). */
  pollMs?: number;
  /**
   * How long a placed guest may leave the host's liveness ping unanswered before its node counts as lost (default
   * 2 000 ms): a frozen or cut-off node keeps its TCP connections open, so only an answer proves it lives. Its
   * in-flight calls then fail with ExtensionCrashedError and its job is stopped. Raise it for extensions whose C code
   * holds the GIL for seconds (the answering thread needs it).
   */
  livenessTimeoutMs?: number;
  /**
   * Whether an autoscaler may add nodes: true submits a job that no alive node can place now (it waits, within the
   * load's startTimeoutMs, for a node that can), false refuses it at once. Absent: asked of the cluster (its
   * autoscaler's report; a cluster started by hand has none that launches nodes).
   */
  autoscaling?: boolean;
}

/** `load({ placement: { ray } })`: what the extension's job asks of its node. */
export interface RayPlacement {
  /** CPUs the job reserves (default 0: the guest mostly waits for calls). */
  numCpus?: number;
  /** GPUs the job reserves (default 0). */
  numGpus?: number;
  /** Custom resources the node must have, e.g. `{ node_b: 1 }` or `{ "accelerator_type:A100": 1 }`. */
  resources?: Record<string, number>;
}

/** `load({ placement })`: where the extension runs. Absent: on this machine, as always. */
export interface PlacementOptions {
  ray?: RayPlacement;
}

/** pip's options on the node when the application names none: wheels only. */
export const DEFAULT_PIP_INSTALL_OPTIONS = Object.freeze(["--only-binary", ":all:"]);
