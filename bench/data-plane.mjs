// The targets of issue 13 (the data plane), judged from one full run: the two sides' metrics, the transport floor
// (transport-floor.mjs) and the pool scaling (pool.mjs), each measured in that run. Same shape as floors.mjs.

const TARGETS = {
  echo50MbMs: 40,
  echo1MbMs: 1,
  rssGrowthMib: 10,
  floorFactor: 1.5,
  pipelinedPerS: 150_000,
  poolOfTwo: 1.8,
};

const fmt = (x) => (x >= 100 ? x.toFixed(0) : x.toPrecision(3));
const number = (x) => typeof x === "number" && Number.isFinite(x);

/** `ours` against an upper (or, with `atLeast`, a lower) bound, with pyisolate's figure beside it when it has one. */
function bound(name, ours, limit, unit, { atLeast = false, pyisolate } = {}) {
  if (!number(ours)) return { name, verdict: "n/a", detail: "not measured" };
  const met = atLeast ? ours >= limit : ours <= limit;
  const theirs = number(pyisolate) ? `; pyisolate ${fmt(pyisolate)} ${unit}` : "";
  return {
    name,
    verdict: met ? "PASS" : "FAIL",
    detail: `ours ${fmt(ours)} ${unit} (target ${atLeast ? "≥" : "≤"} ${fmt(limit)})${theirs}`,
  };
}

/** Our sequential small call over each floor's median, all from transport-floor.mjs's rounds in this run. */
function smallCallToFloor(floor, kind, where = "") {
  const name = `small call within ${TARGETS.floorFactor}× of the ${kind} floor${where}`;
  const ours = floor?.summary?.ours?.median_us;
  const base = floor?.summary?.[kind]?.median_us;
  if (!number(ours) || !number(base)) return { name, verdict: "n/a", detail: "transport floor not measured" };
  const ratios = (floor.runs?.ours ?? []).map((run, i) => run.median_us / floor.runs[kind][i].median_us);
  const spread = ratios.length > 1 ? `; per round ${ratios.map((r) => r.toFixed(2)).join(", ")}` : "";
  return {
    name,
    verdict: ours <= TARGETS.floorFactor * base ? "PASS" : "FAIL",
    detail: `${(ours / base).toFixed(2)}× (ours ${fmt(ours)} µs, floor ${fmt(base)} µs, medians of ${floor.rounds} round(s)${spread})`,
  };
}

/** "Without regressing p99": our steady-state p99 against pyisolate's in the same run. */
function steadyP99(ours, pyisolate) {
  const name = "small call p99, steady state, no worse than pyisolate's";
  if (!number(pyisolate)) return { name, verdict: "n/a", detail: "pyisolate's p99 not measured" };
  return bound(name, ours, pyisolate, "µs");
}

function poolScaling(pool) {
  const name = `a pool of 2 workers at least ${TARGETS.poolOfTwo}× one extension (CPU-bound Python)`;
  const ratios = pool?.ratio_to_one_process ?? {};
  const two = ratios.pool2;
  if (!number(two)) return { name, verdict: "n/a", detail: "pool scaling not measured" };
  const four = number(ratios.pool4) ? `, 4 workers ×${ratios.pool4}` : "";
  const ceiling = number(pool.machine_two_process_scaling)
    ? `; two bare Python processes at once ran ×${pool.machine_two_process_scaling} one on this machine`
    : "";
  return {
    name,
    verdict: two >= TARGETS.poolOfTwo ? "PASS" : "FAIL",
    detail: `×${two}${four} (${pool.cpus} CPUs${ceiling}; pyisolate runs one process per extension, so it has no pool)`,
  };
}

/** [{ name, verdict: "PASS" | "FAIL" | "n/a", detail }] for issue 13's targets. */
export function judgeDataPlane({ ours, pyisolate, floor, floorOneCpu, floorSplit, pool }) {
  const o = ours.metrics ?? {};
  const p = pyisolate.metrics ?? {};
  return [
    bound("bytes echo 50 MB", o.bytes_echo_50MB_median_ms, TARGETS.echo50MbMs, "ms", {
      pyisolate: p.bytes_echo_50MB_median_ms,
    }),
    bound("bytes echo 1 MB", o.bytes_echo_1MB_median_ms, TARGETS.echo1MbMs, "ms", {
      pyisolate: p.bytes_echo_1MB_median_ms,
    }),
    bound("extension RSS growth across the 50 MB echoes", o.bytes_rss_growth_mib, TARGETS.rssGrowthMib, "MiB", {
      pyisolate: p.bytes_rss_growth_mib,
    }),
    smallCallToFloor(floor, "asyncio"),
    smallCallToFloor(floor, "blocking"),
    smallCallToFloor(floorOneCpu, "asyncio", ", all on one CPU (no cross-CPU wake-ups)"),
    smallCallToFloor(floorOneCpu, "blocking", ", all on one CPU"),
    smallCallToFloor(floorSplit, "asyncio", ", every pair split across two CPUs"),
    smallCallToFloor(floorSplit, "blocking", ", every pair split across two CPUs"),
    bound("pipelined calls, steady state", o.pipelined_steady_calls_per_s, TARGETS.pipelinedPerS, "calls/s", {
      atLeast: true,
      pyisolate: p.pipelined_steady_calls_per_s,
    }),
    steadyP99(o.host_to_ext_steady_p99_us, p.host_to_ext_steady_p99_us),
    poolScaling(pool),
  ];
}
