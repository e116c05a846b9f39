// `pyisolate doctor --ray ADDRESS`: is the cluster reachable, its Ray version, its nodes and their resources, and can
// a guest confine itself on each node (a tiny probe job pinned to each alive node by its node-id label).

import { join } from "node:path";
import { findGuestReport, type GuestReport } from "../ray/job-spec.js";
import { RayJobsClient, TERMINAL_JOB_STATUSES } from "../ray/jobs-client.js";
import { buildPackage } from "../ray/package-zip.js";
import { RUNTIME_ROOT } from "../runtime-paths.js";

export interface RayNodeCheck {
  nodeId: string;
  address: string;
  isHead: boolean;
  state: string;
  resources: Record<string, number>;
  /** What a guest there got: Landlock and its ABI, or none and why; or why the probe itself failed. */
  confinement: GuestReport["sandbox"] | { backend: "unknown"; reason: string } | undefined;
}

export interface RayDoctorReport {
  address: string;
  reachable: boolean;
  error?: string;
  version?: string;
  nodes: RayNodeCheck[];
}

const PROBE_TIMEOUT_MS = 120_000;

async function probeNode(
  client: RayJobsClient,
  packageUri: string,
  nodeId: string,
): Promise<RayNodeCheck["confinement"]> {
  try {
    const id = await client.submit({
      entrypoint: "python -I -S -u pyisolate/_guest/ray_entry.py --probe",
      runtime_env: { working_dir: packageUri },
      entrypoint_num_cpus: 0,
      // Pinned to the node by its id label (every Ray node carries ray.io/node-id).
      ...({ entrypoint_label_selector: { "ray.io/node-id": nodeId } } as object),
      metadata: { pyisolate_doctor: "probe" },
    });
    const deadline = Date.now() + PROBE_TIMEOUT_MS;
    for (;;) {
      const info = await client.job(id);
      if (TERMINAL_JOB_STATUSES.includes(info.status)) {
        const report = findGuestReport(await client.logs(id));
        if (report) return report.sandbox;
        return { backend: "unknown", reason: `the probe job ended ${info.status}: ${info.message}`.slice(0, 300) };
      }
      if (Date.now() > deadline) {
        await client.stop(id).catch(() => undefined);
        return {
          backend: "unknown",
          reason: `the probe job did not finish within ${PROBE_TIMEOUT_MS / 1000} s (status ${info.status})`,
        };
      }
      await new Promise((resolve) => setTimeout(resolve, 500));
    }
  } catch (error) {
    return { backend: "unknown", reason: (error as Error).message };
  }
}

/** Checks the cluster at `address`; never throws: an unreachable cluster is a report that says so. */
export async function checkRayCluster(address: string): Promise<RayDoctorReport> {
  const client = new RayJobsClient(address);
  let version: string;
  try {
    version = await client.version();
  } catch (error) {
    return { address, reachable: false, error: (error as Error).message, nodes: [] };
  }
  const nodes = await client.nodes();
  const pkg = await buildPackage([{ dir: join(RUNTIME_ROOT, "pyisolate"), prefix: "pyisolate" }]);
  if (!(await client.hasPackage(pkg.uri))) await client.uploadPackage(pkg.uri, pkg.zip);
  const checks = await Promise.all(
    nodes.map(async (node): Promise<RayNodeCheck> => ({
      nodeId: node.nodeId,
      address: node.nodeIp,
      isHead: node.isHead,
      state: node.state,
      resources: node.resources,
      confinement: node.state === "ALIVE" ? await probeNode(client, pkg.uri, node.nodeId) : undefined,
    })),
  );
  return { address, reachable: true, version, nodes: checks };
}

/** The report as text: one line for the cluster, one block per node. */
export function formatRayReport(report: RayDoctorReport): string {
  if (!report.reachable) return `Ray cluster ${report.address}: unreachable: ${report.error}`;
  const lines = [`Ray cluster ${report.address}: reachable, Ray ${report.version}, ${report.nodes.length} node(s)`];
  for (const node of report.nodes) {
    const resources = Object.entries(node.resources)
      .filter(([name]) => !name.startsWith("node:"))
      .map(([name, n]) => `${name} ${n}`)
      .join(", ");
    const c = node.confinement;
    const confinement =
      c === undefined
        ? "not probed (node not alive)"
        : c.backend === "landlock"
          ? `a guest confines itself: Landlock ABI ${c.abi}`
          : c.backend === "none"
            ? `a guest CANNOT confine itself: ${c.reason} (sandbox mode "required" fails here)`
            : `probe failed: ${c.reason}`;
    lines.push(
      `  node ${node.nodeId.slice(0, 12)} ${node.address}${node.isHead ? " (head)" : ""} ${node.state}`,
      `    resources: ${resources}`,
      `    sandbox: ${confinement}`,
    );
  }
  return lines.join("\n");
}
