// Work the host must do as its process exits (kill install groups, extensions, remove private folders), run from one
// `exit` listener: many concurrent loads each adding their own would trip Node's MaxListeners warning.

type ExitHook = () => void;

const hooks = new Set<ExitHook>();
let listening = false;

function runHooks(): void {
  for (const hook of [...hooks]) {
    try {
      hook();
    } catch {
      // one failing hook must not keep the others from running as the process goes
    }
  }
}

/** Runs `hook` when the host process exits, until the returned function is called. */
export function onHostExit(hook: ExitHook): () => void {
  hooks.add(hook);
  if (!listening) {
    // Process-wide by nature: the process has one exit, so the registry is module state on purpose.
    process.on("exit", runHooks);
    listening = true;
  }
  return () => void hooks.delete(hook);
}
