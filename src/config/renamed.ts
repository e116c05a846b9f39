// Options that were renamed: the old name still works, moved to the new one, with a deprecation note.

import { ConfigError } from "../errors.js";

/** Old option names and the new ones they mean (the file's keys are read through it too). */
export const RENAMED_KEYS: Readonly<Record<string, string>> = Object.freeze({ backend: "installer" });

/** The one deprecation note for the installer's old name (the caller warns with it once). */
export const INSTALLER_RENAMED =
  'option "backend" is deprecated: say "installer" (the installer option was renamed so that it no longer reads like sandbox.backend)';

/**
 * Pure but for the note: the installer `options` ask for, under either name. Both names with different values is
 * a ConfigError naming `prefix`backend; the old name alone calls `onDeprecated` with INSTALLER_RENAMED.
 */
export function renameInstaller(
  options: { installer?: unknown; backend?: unknown },
  prefix: string,
  onDeprecated?: (message: string) => void,
): unknown {
  if (options.backend === undefined) return options.installer;
  if (options.installer !== undefined && options.installer !== options.backend) {
    throw new ConfigError(
      `${prefix}backend (deprecated) and ${prefix}installer disagree (${JSON.stringify(options.backend)} and ${JSON.stringify(options.installer)}): give installer alone`,
      { key: `${prefix}backend` },
    );
  }
  onDeprecated?.(INSTALLER_RENAMED);
  return options.backend;
}
