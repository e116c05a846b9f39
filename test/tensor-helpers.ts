// Shared by the tensor tests: the dependency sets of the numpy and torch fixtures (venvs reused across runs).

/** numpy from the local index. */
export const NUMPY = ["numpy==2.2.6"];

/** The CPU wheel in /opt/wheels (cp311); pip reads find-links from its config. Slow to build once (~1 min). */
export const TORCH = { dependencies: ["numpy==2.2.6", "torch==2.13.0"], backend: "pip" as const, startTimeoutMs: 600_000 };
