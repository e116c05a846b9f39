// The option vocabularies, each one `as const` list: the types, the option checks and the docs derive from these.
// A leaf module (no imports), so that every folder may use it without an import cycle.

/** How strictly `load` insists on a sandbox (docs/sandbox.md, Modes). */
export const SANDBOX_MODES = ["required", "preferred", "disabled"] as const;
export type SandboxMode = (typeof SANDBOX_MODES)[number];

/** Which sandbox backend a load asks for: the best this host offers (`auto`), or one in particular. */
export const SANDBOX_BACKEND_CHOICES = ["auto", "bwrap", "landlock"] as const;
export type SandboxBackendChoice = (typeof SANDBOX_BACKEND_CHOICES)[number];

/** Which tool builds a venv: `auto` takes uv when it is on PATH and runs, else venv + pip. */
export const INSTALLERS = ["auto", "uv", "pip"] as const;
export type Installer = (typeof INSTALLERS)[number];

/** How tensors travel on one connection: shared segments by fd (zero-copy) or bytes in the frame (one copy). */
export const TENSOR_TRANSPORTS = ["shm", "copy"] as const;
export type TensorTransport = (typeof TENSOR_TRANSPORTS)[number];

/** What the option `tensorTransport` may say; `auto` is shared memory when the native addon works. */
export const TENSOR_TRANSPORT_OPTIONS = ["auto", ...TENSOR_TRANSPORTS] as const;
export type TensorTransportOption = (typeof TENSOR_TRANSPORT_OPTIONS)[number];

/** How the host and one guest talk: inherited Unix sockets, or TCP+TLS to the cluster listener (src/remote/). */
export const TRANSPORTS = ["unix", "tcp"] as const;
export type Transport = (typeof TRANSPORTS)[number];

/** Pure: `"a", "b" or "c"`, the way an error message lists a vocabulary. */
export function quotedChoices(list: readonly string[]): string {
  const quoted = list.map((word) => `"${word}"`);
  return quoted.length < 2 ? quoted.join("") : `${quoted.slice(0, -1).join(", ")} or ${quoted.at(-1)}`;
}

/** Pure: whether `value` is a word of `list` (a type guard, so the caller keeps the narrow type). */
export function isOneOf<T extends string>(list: readonly T[], value: unknown): value is T {
  return typeof value === "string" && (list as readonly string[]).includes(value);
}
