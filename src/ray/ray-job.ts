// One guest's Ray job: submitted, watched until it ends (its status read every pollMs), stopped on demand. What the
// session of a remote extension sees of it: where it runs, its pid, how it ended (with Ray's status and message).

import type { ExitInfo } from "../errors.js";
import { RayClusterError, SandboxUnavailableError } from "../errors.js";
import { autoscalerFromStatus, waitsForNodes } from "./autoscaler.js";
import { findGuestReport, REPORT_PREFIX, type GuestReport } from "./job-spec.js";
import {
  TERMINAL_JOB_STATUSES,
  type RayJobInfo,
  type RayJobsClient,
  type RayJobSubmission,
  type RayNode,
} from "./jobs-client.js";

/** Where a remote extension runs (`ext.placement`). */
export interface RayPlacementInfo {
  backend: "ray";
  /** The Ray job's submission id. */
  jobId: string;
  /** The Ray node the guest runs on. */
  nodeId: string;
  /** That node's address (its IP, as Ray knows it). */
  nodeAddress: string;
}

export interface RayGuestJob {
  placement: RayPlacementInfo;
  pid: number;
  report: GuestReport;
  /** Settles once the job has ended: its exit code when Ray knows it, Ray's status and message in `stderrTail`. */
  exited: Promise<ExitInfo>;
  /** Stops the job (Ray's stop) unless it already ended. */
  kill(): void;
  /** The job's last status as read. */
  status(): RayJobInfo | undefined;
}

const LOG_LINES_KEPT = 15;
/** After a stop, how long the job's end is waited for before it is reported with the status it has then. */
const STOP_WAIT_MS = 300;

/** Pure: what the submission asks that no alive node has in total (undefined: some node offers all of it). */
export function unplaceable(nodes: readonly RayNode[], submission: RayJobSubmission): string | undefined {
  const wanted: Record<string, number> = { ...submission.entrypoint_resources };
  if (submission.entrypoint_num_cpus) wanted.CPU = submission.entrypoint_num_cpus;
  if (submission.entrypoint_num_gpus) wanted.GPU = submission.entrypoint_num_gpus;
  const fits = nodes.some(
    (node) =>
      node.state === "ALIVE" && Object.entries(wanted).every(([name, amount]) => (node.resources[name] ?? 0) >= amount),
  );
  return fits ? undefined : JSON.stringify(wanted);
}

/** The job's end as an ExitInfo: Ray's status and message first, then the last lines of its log. */
export function jobExit(info: RayJobInfo | undefined, jobId: string, logs: string): ExitInfo {
  const status = info
    ? `Ray job ${jobId} ${info.status}${info.message ? `: ${info.message}` : ""}`
    : `Ray job ${jobId}: status unknown (the cluster did not answer)`;
  const tail = logs
    .split("\n")
    .filter((line) => line.trim() !== "")
    .slice(-LOG_LINES_KEPT);
  return {
    exitCode: info?.driverExitCode ?? null,
    signal: null,
    stderrTail: [...tail.filter((line) => !line.startsWith(REPORT_PREFIX)), status],
    rayJobStatus: info?.status,
  };
}

/**
 * Submits the guest's job and resolves once the guest has reported (its node, pid and confinement), so that `ext`
 * knows where it runs before the handshake; rejects when the job ends first, the start is aborted, or `required`
 * confinement cannot be had on the node (the job is stopped then).
 */
export async function startRayGuestJob(
  client: RayJobsClient,
  submission: RayJobSubmission,
  options: {
    name: string;
    pollMs: number;
    signal: AbortSignal;
    /** `cluster.ray.autoscaling`: absent, asked of the cluster (autoscaler.ts). */
    autoscaling?: boolean;
  },
): Promise<RayGuestJob> {
  // Ray keeps a job that no node can place PENDING (for 15 minutes by default), and cannot stop it before a node
  // takes it: on a fixed cluster it is refused here; where an autoscaler may add the node, it is submitted.
  const missing = unplaceable(await client.nodes(), submission);
  if (missing) {
    const detected =
      options.autoscaling === undefined
        ? autoscalerFromStatus(await client.clusterStatus().catch(() => undefined))
        : undefined;
    if (!waitsForNodes(options.autoscaling, detected))
      throw new RayClusterError(
        `extension "${options.name}" cannot be placed: no alive node of the cluster at ${client.address} offers ${missing}, and no autoscaler serves it (set cluster.ray.autoscaling: true if one does)`,
      );
  }
  const jobId = await client.submit(submission);
  let last: RayJobInfo | undefined;
  let ended = false;
  let stopAsked = 0;
  const stop = () => {
    if (ended || stopAsked) return;
    stopAsked = Date.now();
    void client.stop(jobId).catch(() => undefined);
  };
  const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));
  const readLogs = () => client.logs(jobId).catch(() => "");
  // Until the report: the job's logs and status, read in turn.
  let report: GuestReport | undefined;
  try {
    while (!report) {
      if (options.signal.aborted)
        throw options.signal.reason instanceof Error ? options.signal.reason : new Error("the start was aborted");
      last = await client.job(jobId);
      report = findGuestReport(await readLogs());
      if (!report && TERMINAL_JOB_STATUSES.includes(last.status)) {
        ended = true;
        const exit = jobExit(last, jobId, await readLogs());
        throw new RayClusterError(
          `extension "${options.name}": its Ray job ended before the guest started: ${exit.stderrTail.at(-1)}\n${exit.stderrTail.slice(-6, -1).join("\n")}`,
        );
      }
      if (!report) await sleep(options.pollMs);
    }
  } catch (error) {
    stop();
    throw error;
  }
  const nodeId = last?.driverNodeId ?? (await client.job(jobId).catch(() => undefined))?.driverNodeId ?? "";
  const node = nodeId ? (await client.nodes().catch(() => [])).find((n) => n.nodeId === nodeId) : undefined;
  if (report.mode === "required" && report.sandbox.backend === "none") {
    stop();
    throw new SandboxUnavailableError(
      options.name,
      `the Ray node ${nodeId || "?"} (${node?.nodeIp ?? "address unknown"}) cannot confine the guest: ${report.sandbox.reason}`,
      {
        model: "ray-node",
        remedy: ["place it on a node whose kernel has Landlock (Linux 5.13 or newer, landlock in lsm=)"],
      },
    );
  }
  const exited = (async (): Promise<ExitInfo> => {
    for (;;) {
      try {
        last = await client.job(jobId);
        if (TERMINAL_JOB_STATUSES.includes(last.status)) break;
      } catch {
        // The dashboard may be briefly away (a restarting head): keep asking.
      }
      // Once stopped (a stop(), a dropped connection): the calls in flight wait on this, so it is bounded; a job on
      // a lost node stays RUNNING until Ray notices the node is gone, which takes longer than a caller should wait.
      if (stopAsked && Date.now() - stopAsked > STOP_WAIT_MS) break;
      await sleep(options.pollMs);
    }
    ended = true;
    return jobExit(last, jobId, await readLogs());
  })();
  return {
    placement: { backend: "ray", jobId, nodeId, nodeAddress: node?.nodeIp ?? "" },
    pid: report.pid,
    report,
    exited,
    kill: stop,
    status: () => last,
  };
}
