// What bench/tcp.mjs and bench/ray.mjs measure of one extension, and how they set two paths side by side.

const quantile = (xs, q) => [...xs].sort((a, b) => a - b)[Math.min(xs.length - 1, Math.floor(xs.length * q))];

/** Small-call latency (median, p99), pipelined calls/s and a 1 MiB bytes round trip, after `warmup` calls. */
export async function measureTransport(ext, { calls, pipelined, warmup, mibRounds }) {
  for (let i = 0; i < warmup; i++) await ext.call("ping", [i]);
  const samples = [];
  for (let i = 0; i < calls; i++) {
    const began = process.hrtime.bigint();
    await ext.call("ping", [i]);
    samples.push(Number(process.hrtime.bigint() - began) / 1000);
  }
  const began = performance.now();
  const replies = await Promise.all(Array.from({ length: pipelined }, (_, i) => ext.call("ping", [i])));
  const perSecond = pipelined / ((performance.now() - began) / 1000);
  if (replies.some((r, i) => r !== i)) throw new Error("pipelined replies out of order");
  const mib = new Uint8Array(1 << 20);
  const bytesTimes = [];
  for (let i = 0; i < mibRounds; i++) {
    const t = performance.now();
    await ext.call("echo", [mib]);
    bytesTimes.push(performance.now() - t);
  }
  return {
    medianUs: quantile(samples, 0.5),
    p99Us: quantile(samples, 0.99),
    perSecond,
    mibRoundTripMs: quantile(bytesTimes, 0.5),
  };
}

/** One row per metric: the median over rounds of each path, and their ratio (`b/a`). */
export function compareRows(results, a, b) {
  const med = (rows, key) =>
    quantile(
      rows.map((r) => r[key]),
      0.5,
    );
  return ["medianUs", "p99Us", "perSecond", "mibRoundTripMs"].map((key) => {
    const first = med(results[a], key);
    const second = med(results[b], key);
    return {
      metric: key,
      [a]: Number(first.toFixed(1)),
      [b]: Number(second.toFixed(1)),
      [`${b}/${a}`]: Number((second / first).toFixed(2)),
    };
  });
}
