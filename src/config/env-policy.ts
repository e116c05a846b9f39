// Which environment variables an extension's own pyisolate.yaml may set, and which act before any confinement.

/**
 * Tuning knobs the untrusted file may set without asking: thread-pool sizes, offline and telemetry switches and
 * log levels. None names a file, a library or a program, and none is read before the sandbox is in place by
 * anything but the extension's own libraries.
 */
export const FILE_ENV_ALLOWED: readonly string[] = [
  "OMP_NUM_THREADS",
  "OPENBLAS_NUM_THREADS",
  "MKL_NUM_THREADS",
  "NUMEXPR_NUM_THREADS",
  "NUMEXPR_MAX_THREADS",
  "VECLIB_MAXIMUM_THREADS",
  "BLIS_NUM_THREADS",
  "RAYON_NUM_THREADS",
  "TOKENIZERS_PARALLELISM",
  "HF_HUB_OFFLINE",
  "HF_DATASETS_OFFLINE",
  "TRANSFORMERS_OFFLINE",
  "HF_HUB_DISABLE_TELEMETRY",
  "DO_NOT_TRACK",
  "TF_CPP_MIN_LOG_LEVEL",
  "TRANSFORMERS_VERBOSITY",
];

/** pyisolate's switch for CUDA IPC: set in the host's environment it turns the `cudaIpc` option's default on. */
export const CUDA_IPC_ENV = "PYISOLATE_ENABLE_CUDA_IPC";

/**
 * Pure: whether the extension gets CUDA IPC. The code option decides; unset, the host's own pyisolate-compatible
 * switch does (the clean environment would otherwise drop it); neither: undefined, the env options alone decide.
 */
export function cudaIpcWanted(option: boolean | undefined, hostEnv: NodeJS.ProcessEnv): boolean | undefined {
  if (option !== undefined) return option;
  return hostEnv[CUDA_IPC_ENV] === "1" ? true : undefined;
}

/** The longest value the file may give one variable: tuning knobs are short, and the value rides in every start. */
export const FILE_ENV_MAX_VALUE = 1024;

/**
 * Variables read before the extension is confined, by the dynamic loader and glibc in every program (bwrap
 * included), by the interpreter at start-up, or by the host and the guest runtime themselves. The file never sets
 * them; a host that means one sets it in code (`env`), and `fileEnv` cannot hand one to the file.
 */
const PRE_CONFINEMENT = new RegExp(
  "^(" +
    [
      "LD_.*", // the dynamic loader: LD_PRELOAD, LD_LIBRARY_PATH, LD_AUDIT, ...
      "GCONV_PATH",
      "GLIBC_TUNABLES",
      "MALLOC_.*",
      "NLSPATH",
      "LOCPATH",
      "TZDIR", // glibc loads or parses these
      "HOSTALIASES",
      "RES_OPTIONS",
      "LOCALDOMAIN",
      "RESOLV_.*", // glibc's resolver
      "PYTHON.*",
      "VIRTUAL_ENV",
      "PYISOLATE_.*", // the interpreter and the guest runtime
      "PATH",
      "HOME",
      "TMPDIR",
      "SHELL",
      "IFS",
      "ENV",
      "BASH_ENV", // what the host sets itself, or shells source
      "SSL_.*",
      "REQUESTS_CA_BUNDLE",
      "CURL_CA_BUNDLE",
      "[A-Za-z]+_PROXY", // trust anchors and proxies
    ].join("|") +
    ")$",
  "i",
);

/** True for a variable that acts before confinement or is the host's own (see PRE_CONFINEMENT). */
export function isPreConfinementVariable(name: string): boolean {
  return PRE_CONFINEMENT.test(name);
}

/**
 * Variables that every dynamically linked program reads at exec: given in code, they must reach the extension's
 * interpreter but not the bwrap binary that starts it (bwrap runs as the host user before any namespace).
 */
const LOADER =
  /^(LD_.*|GCONV_PATH|GLIBC_TUNABLES|MALLOC_.*|NLSPATH|LOCPATH|TZDIR|HOSTALIASES|RES_OPTIONS|LOCALDOMAIN|RESOLV_.*)$/;

/** True for a variable the dynamic loader or glibc acts on in any program that starts with it. */
export function isLoaderVariable(name: string): boolean {
  return LOADER.test(name);
}

/** Pure: may the file set variable `name`, given the names the host application allows beyond the built-in list? */
export function fileMaySetEnv(name: string, hostAllowed: readonly string[] = []): boolean {
  return FILE_ENV_ALLOWED.includes(name) || hostAllowed.includes(name);
}
