"""The entrypoint of a Ray job that runs one extension: ``python -I -S -u pyisolate/_guest/ray_entry.py``.

Ray unpacked the job's working_dir (this runtime under ``pyisolate/``, the extension under ``ext/``) and made the
job's venv (``runtime_env`` pip) on the node. Nothing of that venv has run: ``-I -S`` kept its site-packages and
``.pth`` files away. This script decides the guest's confinement from what the node has (the host cannot know the
node's paths), starts the guest's bootstrap (which dials the host over TCP+TLS, confines itself with these rules,
and only then activates the venv), reports it on stdout as one ``PYISOLATE_RAY_GUEST {json}`` line that the host
reads from the job's logs, and waits outside the confinement to remove the guest's private folder when it ends.
"""

import json
import os
import shutil
import signal
import sys
import tempfile
import time

REPORT_PREFIX = "PYISOLATE_RAY_GUEST "
MODE_ENV = "PYISOLATE_SANDBOX_MODE"  # "required" | "preferred" | "disabled", set by the host in the job's env
MODULE_DIR_ENV = "PYISOLATE_MODULE_DIR"  # the extension's folder, relative to the working_dir
EXIT_NOT_CONFINED = 4  # protocol.EXIT_NOT_CONFINED
_WATCH_S = 0.1  # how often the parent checks on the guest and on Ray's worker

SYSTEM_DIRS = ["/usr", "/bin", "/sbin", "/lib", "/lib64", "/lib32", "/libx32"]
SYSTEM_FILES = [
    "/etc/ld.so.cache",
    "/etc/ld.so.conf",
    "/etc/ld.so.conf.d",
    "/etc/alternatives",
    "/etc/ssl",
    "/etc/ca-certificates",
    "/etc/pki",
    "/etc/crypto-policies",
    "/etc/localtime",
    "/etc/mime.types",
    "/dev/null",
    "/dev/zero",
    "/dev/full",
    "/dev/random",
    "/dev/urandom",
    "/proc/cpuinfo",
    "/sys/devices/system/cpu",
]


def landlock_rules(prefixes, work_dir, package_dir, private_dir):
    """Pure: the Landlock rules of a guest on a node. Read: the system's folders, the interpreter's and the venv's
    prefixes, the unpacked working_dir; write: only its private folder. No TCP: the guest connects before it
    confines itself, and keeps that one connection."""
    read_only = list(SYSTEM_DIRS + SYSTEM_FILES)
    for path in [*prefixes, work_dir]:
        real = os.path.realpath(path)
        for p in (path, real):
            if p not in read_only:
                read_only.append(p)
    return {"read_only": read_only, "writable": [private_dir], "network": False, "package_dir": package_dir}


def job_venv():
    """The job's venv (Ray's runtime_env pip made it): the folder above the ``python`` Ray started, when it holds a
    ``pyvenv.cfg``. Under ``-I`` the interpreter does not take it as its prefix, so it is found here."""
    candidate = os.path.dirname(os.path.dirname(os.path.abspath(sys.executable)))
    return candidate if os.path.isfile(os.path.join(candidate, "pyvenv.cfg")) else None


def landlock_abi():
    """The node's Landlock ABI, or (0, why) when it has none."""
    sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
    try:
        import landlock

        return landlock.abi_version(), ""
    except OSError as e:
        return 0, str(e)
    finally:
        sys.path.pop(0)


def main():
    if sys.argv[1:] == ["--probe"]:
        # `pyisolate doctor --ray`: the report only, nothing started.
        abi, why = landlock_abi()
        sandbox = {"backend": "landlock", "abi": abi} if abi else {"backend": "none", "reason": why}
        print(
            REPORT_PREFIX
            + json.dumps({"pid": os.getpid(), "python": sys.version.split()[0], "sandbox": sandbox, "mode": "probe"}),
            flush=True,
        )
        return 0
    mode = os.environ.pop(MODE_ENV, "preferred")
    work_dir = os.getcwd()
    module_dir = os.path.realpath(os.path.join(work_dir, os.environ.pop(MODULE_DIR_ENV, "ext")))
    private_dir = tempfile.mkdtemp(prefix="pyisolate-guest-")
    venv = job_venv()
    prefixes = sorted({sys.prefix, sys.base_prefix, sys.exec_prefix, sys.base_exec_prefix, *([venv] if venv else [])})
    abi, why = (0, "the sandbox is disabled by configuration") if mode == "disabled" else landlock_abi()
    confinement = {"backend": "landlock", "abi": abi} if abi else {"backend": "none", "reason": why}
    if mode == "required" and not abi:
        _report(os.getpid(), confinement, mode)
        sys.stderr.write(f"pyisolate guest: sandbox mode is required and this node cannot confine the guest: {why}\n")
        shutil.rmtree(private_dir, ignore_errors=True)
        return EXIT_NOT_CONFINED
    env = dict(os.environ)
    env.update(
        {
            "PYISOLATE_MODULE_PATH": module_dir,
            # No PID namespace on the node: the supervisor kills whatever the extension starts when it ends.
            "PYISOLATE_SUPERVISE": "1",
            "HOME": private_dir,
            "TMPDIR": private_dir,
        }
    )
    if venv:
        env["PYISOLATE_VENV"] = json.dumps({"prefix": venv, "system_site_packages": False})
    if abi:
        env["PYISOLATE_LANDLOCK"] = json.dumps(landlock_rules(prefixes, work_dir, module_dir, private_dir))
    bootstrap = os.path.join(os.path.dirname(os.path.abspath(__file__)), "bootstrap.py")
    # The base interpreter, as the host starts it locally: the venv's python is the venv's file (decision 2).
    python = getattr(sys, "_base_executable", sys.executable)
    child = os.fork()
    if child == 0:
        try:
            os.execve(python, [python, "-I", "-S", "-u", bootstrap], env)
        finally:
            os._exit(127)
    _report(child, confinement, mode)
    return _wait_and_clean(child, private_dir)


def _report(pid, confinement, mode):
    report = {"pid": pid, "python": sys.version.split()[0], "sandbox": confinement, "mode": mode}
    print(REPORT_PREFIX + json.dumps(report), flush=True)


def _wait_and_clean(child, private_dir):
    """Stay outside the guest's confinement until it ends, pass Ray's stop on to it, then remove its private folder
    (the guest cannot: it lives inside it), and end as the guest did."""

    def forward(signum, _frame):
        try:
            os.kill(child, signum)
        except ProcessLookupError:
            pass

    for signum in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
        signal.signal(signum, forward)
    # Ray's worker that started this job is our parent: when it dies (its raylet died: the node is lost), the guest
    # must end at once, so that its connection drops and the host fails its calls now, not when Ray notices.
    parent = os.getppid()
    while True:
        pid, status = os.waitpid(child, os.WNOHANG)
        if pid == child:
            break
        if os.getppid() != parent:
            forward(signal.SIGTERM, None)
            parent = os.getppid()
        time.sleep(_WATCH_S)
    shutil.rmtree(private_dir, ignore_errors=True)
    if os.WIFSIGNALED(status):
        return 128 + os.WTERMSIG(status)
    return os.WEXITSTATUS(status)


if __name__ == "__main__":
    sys.exit(main())
