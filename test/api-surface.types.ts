// Compile-time checks of the exported option types (npm run typecheck): each @ts-expect-error fails the check when
// the type starts to accept what it must refuse, and each accepted value fails it when the type stops taking it.

import type * as api from "../src/index.js";

const sharedRuntime: api.SharedRuntimeOptions = { dependencies: ["six"], python: "3.11", installer: "pip" };
export const manager: api.ManagerOptions = { venvRoot: "/tmp/x", sharedRuntimes: { base: sharedRuntime } };
export const load: api.ExtensionOptions = { name: "x", modulePath: ".", sharedRuntime: "base" };
export const link: api.SharedRuntimeLink | undefined = ({} as api.Environment).sharedRuntime;
// @ts-expect-error a shared runtime is named by a string
export const badLink: api.ExtensionOptions = { name: "x", modulePath: ".", sharedRuntime: 1 };

const restart: api.RestartOptions = {
  maxRestarts: 2,
  windowMs: 1000,
  backoffMs: 10,
  queueCalls: false,
  queueTimeoutMs: 50,
};
const health: api.HealthOptions = { intervalMs: 100, timeoutMs: 1000 };
export const supervised: api.ExtensionOptions = { name: "x", modulePath: ".", restart, health };
export const unwatched: api.ExtensionOptions = { name: "x", modulePath: ".", health: false };
// @ts-expect-error health intervals are numbers of milliseconds
export const badHealth: api.HealthOptions = { intervalMs: "5s" };
// @ts-expect-error restart options are numbers of milliseconds, not strings
export const badRestart: api.RestartOptions = { windowMs: "1s" };
