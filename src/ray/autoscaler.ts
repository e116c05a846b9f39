// Whether an autoscaler serves a Ray cluster, from its dashboard's GET /api/cluster_status: a job that no alive node
// can place is refused up front on a fixed cluster, and submitted (to wait for a new node) where one may be added.

type Json = Record<string, unknown>;

function object(value: unknown): Json | undefined {
  return typeof value === "object" && value !== null && !Array.isArray(value) ? (value as Json) : undefined;
}

/**
 * Pure: true where an autoscaler with node types of its own reports, false for a fixed cluster, undefined when the
 * answer tells neither. Every `ray start --head` runs Ray's monitor; on a cluster started by hand it runs the
 * "readonly" provider, which gives each node a type named `node_<its id>` and never launches one. An autoscaler from
 * a cluster config (`ray up`, KubeRay) names its types after the config's groups. Ray's v2 autoscaler writes no
 * such report: the answer then holds none, and undefined leaves the choice to the caller.
 */
export function autoscalerFromStatus(body: unknown): boolean | undefined {
  const data = object(object(body)?.data);
  const report = object(object(data?.clusterStatus)?.autoscalerReport);
  if (!report) return undefined;
  const pending = [report.pendingNodes, report.pendingLaunches].some(
    (v) => (Array.isArray(v) && v.length > 0) || Object.keys(object(v) ?? {}).length > 0,
  );
  if (pending) return true;
  const mapping = Object.entries(object(report.nodeTypeMapping) ?? {});
  if (mapping.length === 0) return undefined;
  return !mapping.every(([nodeId, type]) => type === `node_${nodeId}`);
}

/**
 * Pure: submit a job that no alive node can place now? The application's `cluster.ray.autoscaling` when set, else
 * what the cluster says, else yes: a cluster that reports no fixed set of nodes may grow (the v2 autoscaler).
 */
export function waitsForNodes(option: boolean | undefined, detected: boolean | undefined): boolean {
  return option ?? detected ?? true;
}
