// The one Python version policy: what venvs may be built for, and what the guest runtime is tested on.

/** The oldest Python a venv can be built for (older ones are refused with a ConfigError naming `python`). */
export const MIN_PYTHON: readonly [number, number] = [3, 9];

/** The 3.x minors the guest runtime's own tests (python/tests) run on. */
export const TESTED_PYTHON_MINORS: readonly number[] = [9, 10, 11, 12, 13];

/** "3.9 to 3.13": for messages and docs. */
export const TESTED_PYTHON_RANGE = `3.${TESTED_PYTHON_MINORS[0]} to 3.${TESTED_PYTHON_MINORS[TESTED_PYTHON_MINORS.length - 1]}`;
