// Ray's Jobs REST API (the dashboard's /api/jobs/, /api/packages/, /api/version, /api/v0/nodes) over node:http:
// every answer bounded in time and size, and every failure a RayClusterError that says which request and why.

import { request as httpRequest } from "node:http";
import { request as httpsRequest } from "node:https";
import { RayClusterError } from "../errors.js";

/** A job's state as Ray reports it. */
export type RayJobStatus = "PENDING" | "RUNNING" | "STOPPED" | "SUCCEEDED" | "FAILED";
/** States a job never leaves. */
export const TERMINAL_JOB_STATUSES: readonly RayJobStatus[] = ["STOPPED", "SUCCEEDED", "FAILED"];

export interface RayJobInfo {
  submissionId: string;
  status: RayJobStatus;
  message: string;
  /** The node the entrypoint runs on (Ray's node id), once it started. */
  driverNodeId: string | undefined;
  driverExitCode: number | undefined;
  entrypoint: string;
  metadata: Record<string, string>;
}

export interface RayNode {
  nodeId: string;
  nodeIp: string;
  isHead: boolean;
  state: string;
  resources: Record<string, number>;
}

/** What POST /api/jobs/ takes (src/ray/job-spec.ts makes it). */
export interface RayJobSubmission {
  entrypoint: string;
  submission_id?: string;
  runtime_env?: Record<string, unknown>;
  metadata?: Record<string, string>;
  entrypoint_num_cpus?: number;
  entrypoint_num_gpus?: number;
  entrypoint_resources?: Record<string, number>;
}

const REQUEST_TIMEOUT_MS = 15_000;
/** A cluster answer bigger than this is refused: a job's logs hold the extension's output, which it controls. */
const MAX_ANSWER_BYTES = 4 * 1024 * 1024;

/** The client of one cluster's Jobs API at `address` (http://host:8265). Holds no state but the address. */
export class RayJobsClient {
  readonly address: string;

  constructor(address: string) {
    this.address = address.replace(/\/+$/, "");
  }

  /** Ray's version (GET /api/version). */
  async version(): Promise<string> {
    const body = (await this.json("GET", "/api/version")) as { ray_version?: unknown };
    if (typeof body.ray_version !== "string")
      throw new RayClusterError(`${this.address} answered /api/version without a ray_version: is it a Ray dashboard?`);
    return body.ray_version;
  }

  /** The cluster's nodes with their total resources (GET /api/v0/nodes). */
  async nodes(): Promise<RayNode[]> {
    const body = (await this.json("GET", "/api/v0/nodes?limit=1000")) as { data?: { result?: { result?: unknown[] } } };
    const rows = body.data?.result?.result;
    if (!Array.isArray(rows)) throw new RayClusterError(`${this.address} answered /api/v0/nodes without a node list`);
    return rows.map((row) => {
      const r = row as Record<string, unknown>;
      return {
        nodeId: String(r.node_id),
        nodeIp: String(r.node_ip),
        isHead: r.is_head_node === true,
        state: String(r.state),
        resources: numbers(r.resources_total),
      };
    });
  }

  /** The autoscaler's report as the dashboard keeps it (GET /api/cluster_status; autoscaler.ts reads it). */
  async clusterStatus(): Promise<unknown> {
    return this.json("GET", "/api/cluster_status");
  }

  /** Submits a job; returns its submission id. */
  async submit(job: RayJobSubmission): Promise<string> {
    const body = (await this.json("POST", "/api/jobs/", job)) as { submission_id?: unknown };
    if (typeof body.submission_id !== "string")
      throw new RayClusterError(`the cluster at ${this.address} accepted the job but named no submission id`);
    return body.submission_id;
  }

  async job(id: string): Promise<RayJobInfo> {
    return jobInfo(await this.json("GET", `/api/jobs/${encodeURIComponent(id)}`));
  }

  /** Every job the cluster knows (running and finished). */
  async jobs(): Promise<RayJobInfo[]> {
    const body = await this.json("GET", "/api/jobs/");
    if (!Array.isArray(body)) throw new RayClusterError(`${this.address} answered /api/jobs/ without a list`);
    return body.map(jobInfo);
  }

  /** Asks Ray to stop the job (SIGTERM to its entrypoint, SIGKILL after Ray's grace); true if it was running. */
  async stop(id: string): Promise<boolean> {
    const body = (await this.json("POST", `/api/jobs/${encodeURIComponent(id)}/stop`)) as { stopped?: unknown };
    return body.stopped === true;
  }

  /** The job's output so far (stdout and stderr, as Ray keeps them). */
  async logs(id: string): Promise<string> {
    const body = (await this.json("GET", `/api/jobs/${encodeURIComponent(id)}/logs`)) as { logs?: unknown };
    return typeof body.logs === "string" ? body.logs : "";
  }

  /** Is the package (gcs://_ray_pkg_<hash>.zip) already in the cluster? */
  async hasPackage(uri: string): Promise<boolean> {
    const response = await this.request("GET", packagePath(uri));
    return response.ok;
  }

  /** Uploads a zip the cluster then unpacks as a job's working_dir. */
  async uploadPackage(uri: string, zip: Buffer): Promise<void> {
    const response = await this.request("PUT", packagePath(uri), zip, "application/octet-stream");
    if (!response.ok)
      throw new RayClusterError(
        `uploading ${uri} to ${this.address} failed: HTTP ${response.status} ${response.body.toString("utf8").slice(-300)}`,
      );
  }

  private async json(method: string, path: string, body?: unknown): Promise<unknown> {
    const response = await this.request(
      method,
      path,
      body === undefined ? undefined : Buffer.from(JSON.stringify(body)),
      "application/json",
    );
    const text = response.body.toString("utf8");
    if (!response.ok)
      throw new RayClusterError(
        `${method} ${path} on ${this.address} failed: HTTP ${response.status} ${text.slice(0, 300)}`,
        { status: response.status },
      );
    try {
      return JSON.parse(text) as unknown;
    } catch {
      throw new RayClusterError(`${method} ${path} on ${this.address} did not answer JSON: ${text.slice(0, 200)}`);
    }
  }

  /**
   * node:http, not fetch: fetch sends the Sec-Fetch-* headers of a browser, and Ray refuses what looks like browser
   * traffic (HTTP 405) to keep web pages from submitting jobs.
   */
  private request(
    method: string,
    path: string,
    body?: Buffer,
    type?: string,
  ): Promise<{ ok: boolean; status: number; body: Buffer }> {
    const url = new URL(`${this.address}${path}`);
    const send = url.protocol === "https:" ? httpsRequest : httpRequest;
    return new Promise((resolve, reject) => {
      const fail = (reason: string, cause?: unknown) =>
        reject(
          new RayClusterError(`the Ray cluster at ${this.address} is unreachable (${method} ${path}): ${reason}`, {
            cause,
          }),
        );
      const req = send(
        url,
        {
          method,
          timeout: REQUEST_TIMEOUT_MS,
          headers: { ...(type ? { "content-type": type } : {}), ...(body ? { "content-length": body.length } : {}) },
        },
        (res) => {
          const chunks: Buffer[] = [];
          let size = 0;
          res.on("data", (chunk: Buffer) => {
            size += chunk.length;
            if (size > MAX_ANSWER_BYTES) {
              req.destroy();
              reject(
                new RayClusterError(
                  `the answer to ${method} ${path} is over the ${MAX_ANSWER_BYTES} bytes this client reads`,
                ),
              );
              return;
            }
            chunks.push(chunk);
          });
          res.on("end", () =>
            resolve({
              ok: res.statusCode! >= 200 && res.statusCode! < 300,
              status: res.statusCode!,
              body: Buffer.concat(chunks),
            }),
          );
          res.on("error", (error) => fail(error.message, error));
        },
      );
      req.on("timeout", () => {
        req.destroy();
        fail(`no answer within ${REQUEST_TIMEOUT_MS} ms`);
      });
      req.on("error", (error: NodeJS.ErrnoException) => fail(error.code ?? error.message, error));
      req.end(body);
    });
  }
}

function packagePath(uri: string): string {
  const match = /^gcs:\/\/(_ray_pkg_[0-9a-f]+\.zip)$/.exec(uri);
  if (!match) throw new RayClusterError(`not a package URI this client uploads: ${uri}`);
  return `/api/packages/gcs/${match[1]}`;
}

function numbers(value: unknown): Record<string, number> {
  if (typeof value !== "object" || value === null) return {};
  return Object.fromEntries(Object.entries(value).filter(([, n]) => typeof n === "number")) as Record<string, number>;
}

function jobInfo(value: unknown): RayJobInfo {
  const r = (typeof value === "object" && value !== null ? value : {}) as Record<string, unknown>;
  const status = String(r.status) as RayJobStatus;
  return {
    submissionId: String(r.submission_id ?? r.job_id),
    status,
    message: typeof r.message === "string" ? r.message : "",
    driverNodeId: typeof r.driver_node_id === "string" && r.driver_node_id ? r.driver_node_id : undefined,
    driverExitCode: typeof r.driver_exit_code === "number" ? r.driver_exit_code : undefined,
    entrypoint: String(r.entrypoint ?? ""),
    metadata: typeof r.metadata === "object" && r.metadata !== null ? (r.metadata as Record<string, string>) : {},
  };
}
