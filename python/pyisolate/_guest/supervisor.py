"""The guest's supervisor: every process the extension starts dies with it, a ``setsid`` double fork included.

Where no PID namespace holds the extension (Landlock, or no sandbox), ``fork_supervised()`` forks before any
confinement. The child returns and becomes the extension. The parent never returns: it stays outside the child's
Landlock domain (which then cannot signal or trace it), is a child subreaper (so orphans of the extension, daemons
included, are re-parented to it rather than to init), reaps them, and when the child exits, when the host sends
SIGTERM/SIGINT/SIGHUP, or when the host dies (``PR_SET_PDEATHSIG``), SIGKILLs every descendant until none is left
and exits the way the child did, so the host sees the child's own exit code or signal.
"""

import os
import signal
import sys
import time

__all__ = ["SUPERVISE_ENV", "descendants", "fork_supervised", "from_env"]

SUPERVISE_ENV = (
    "PYISOLATE_SUPERVISE"  # "1": set by the host for Landlock and for no sandbox (bwrap has a PID namespace)
)
_LANDLOCK_ENV = "PYISOLATE_LANDLOCK"

_PR_SET_PDEATHSIG = 1
_PR_SET_CHILD_SUBREAPER = 36
_STOP_SIGNALS = (signal.SIGTERM, signal.SIGINT, signal.SIGHUP)
_WATCHED = {signal.SIGCHLD, *_STOP_SIGNALS}
_SWEEP_DEADLINE_S = 10.0  # a process stuck in the kernel (D state) cannot be reaped; do not wait for it forever


def _close_inherited():
    """Close every descriptor but stdio: the RPC socket and the fd channel (else the host would not see EOF on them
    when the extension dies) and the pinned paths the Landlock rules name. The supervisor needs none of them."""
    for name in os.listdir("/proc/self/fd"):
        fd = int(name)
        if fd > 2:
            try:
                os.close(fd)
            except OSError:
                pass  # the listing's own descriptor, closed meanwhile


def _prctl(libc, option, value):
    import ctypes

    if libc.prctl(option, value, 0, 0, 0) != 0:
        err = ctypes.get_errno()
        raise OSError(err, "supervisor: prctl(%d) failed: %s" % (option, os.strerror(err)))


def _parents():
    """Every visible process's parent, from /proc/<pid>/stat (``children`` files need CONFIG_PROC_CHILDREN)."""
    return _parents_of(int(name) for name in os.listdir("/proc") if name.isdigit())


def descendants(root, parents=None):
    """Pure given ``parents``: every process below ``root`` (zombies included), parents before children."""
    parents = _parents() if parents is None else parents
    children = {}
    for pid, ppid in parents.items():
        children.setdefault(ppid, []).append(pid)
    out, todo = [], list(children.get(root, ()))
    while todo:
        pid = todo.pop()
        out.append(pid)
        todo.extend(children.get(pid, ()))
    return out


def _reap(child, status):
    """Collect every exited child without waiting; returns the extension's wait status once it is known."""
    while True:
        try:
            pid, st = os.waitpid(-1, os.WNOHANG)
        except ChildProcessError:
            return status
        if pid == 0:
            return status
        if pid == child:
            status = st


def _kill(pid, tree):
    """SIGKILL ``pid`` if it is still in ``tree``: through a pidfd, so that a pid reused meanwhile is never hit."""
    try:
        fd = os.pidfd_open(pid)
    except ProcessLookupError:
        return  # gone
    except (
        AttributeError,
        OSError,
    ):  # no os.pidfd_open in this build, or a kernel before 5.3: the plain kill, with its tiny race
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        return
    try:
        # The pidfd pins one process: if the pid now names one whose parent is outside the tree, it is a stranger.
        if _parents_of((pid,)).get(pid) in tree:
            signal.pidfd_send_signal(fd, signal.SIGKILL)
    except ProcessLookupError:
        pass
    finally:
        os.close(fd)


def _parents_of(pids):
    """Each pid's parent from /proc/<pid>/stat ("pid (comm) state ppid ...": comm may hold spaces and parentheses,
    so the fields are split after the last ')'); pids gone meanwhile are left out."""
    parents = {}
    for pid in pids:
        try:
            with open("/proc/%d/stat" % pid, "rb") as f:
                stat = f.read()
            parents[pid] = int(stat[stat.rfind(b")") + 2 :].split()[1])
        except (OSError, IndexError, ValueError):
            pass
    return parents


def _sweep(child, status):
    """SIGKILL every descendant, again and again, until none is left (each one killed cannot fork again)."""
    me, deadline = os.getpid(), time.monotonic() + _SWEEP_DEADLINE_S
    while time.monotonic() < deadline:
        status = _reap(child, status)
        left = descendants(me)
        if not left:
            break
        tree = {me, *left}
        for pid in left:
            _kill(pid, tree)
        signal.sigtimedwait({signal.SIGCHLD}, 0.02)
    return _reap(child, status)


def _exit_like(status, stop_signal):
    """Leave as the extension did (or by the signal the host stopped us with), so the host's report reads the same."""
    sys.stdout.flush()
    sys.stderr.flush()
    if stop_signal is None and status is not None and os.WIFEXITED(status):
        os._exit(os.WEXITSTATUS(status))
    sig = stop_signal or (os.WTERMSIG(status) if status is not None and os.WIFSIGNALED(status) else signal.SIGKILL)
    import resource

    resource.setrlimit(resource.RLIMIT_CORE, (0, 0))  # re-raising SIGSEGV must not dump the supervisor's core
    if sig != signal.SIGKILL:
        signal.signal(sig, signal.SIG_DFL)
    signal.pthread_sigmask(signal.SIG_UNBLOCK, {sig})
    os.kill(os.getpid(), sig)
    os._exit(128 + sig)  # a signal whose default is not to terminate


def _supervise(child):
    status, stop_signal = None, None
    while status is None and stop_signal is None:
        info = signal.sigwaitinfo(_WATCHED)
        if info.si_signo == signal.SIGCHLD:
            status = _reap(child, None)  # an orphan's exit is reaped here too; the loop goes on until the child's
        else:
            stop_signal = info.si_signo
    _exit_like(_sweep(child, status), stop_signal)


def _sibling(name):
    # By path: bootstrap.py loads this module before the pyisolate package, so that the supervisor's memory is a bare
    # interpreter's (the extension's imports happen in the child only).
    import importlib.util

    spec = importlib.util.spec_from_file_location(
        "_pyisolate_" + name, os.path.join(os.path.dirname(os.path.abspath(__file__)), name + ".py")
    )
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _drop_capabilities():
    _sibling("caps").drop_all()


def from_env():
    """Fork the supervisor when the host asks; returns, in the child, whether it did. Raises OSError if it cannot."""
    if os.environ.pop(SUPERVISE_ENV, None) != "1":
        return False
    # Under Landlock the supervisor, outside the domain, holds no capability either: it needs none.
    fork_supervised(_drop_capabilities if _LANDLOCK_ENV in os.environ else None)
    return True


def fork_supervised(drop_privileges=None):
    """Fork; return in the child (the extension-to-be); the parent supervises it and exits when it is over.

    ``drop_privileges``: called in the parent after the fork (capabilities, ``no_new_privs``): the supervisor needs
    none of them to kill its own descendants.
    """
    import ctypes

    libc = ctypes.CDLL(None, use_errno=True)  # once: each CDLL(None) costs a dlopen
    host = os.getppid()
    old_mask = signal.pthread_sigmask(signal.SIG_BLOCK, _WATCHED)  # before the fork: no stop signal can be missed
    _prctl(libc, _PR_SET_CHILD_SUBREAPER, 1)
    _prctl(libc, _PR_SET_PDEATHSIG, signal.SIGTERM)  # the host's death is a stop: sweep, then exit
    supervisor = os.getpid()
    child = os.fork()
    if child == 0:
        _prctl(libc, _PR_SET_CHILD_SUBREAPER, 0)
        _prctl(libc, _PR_SET_PDEATHSIG, signal.SIGKILL)  # a supervisor killed outright takes the extension with it
        signal.pthread_sigmask(signal.SIG_SETMASK, old_mask)
        if os.getppid() != supervisor:
            os._exit(1)
        return
    _close_inherited()
    if os.getppid() != host:
        os.kill(os.getpid(), signal.SIGTERM)  # the host died before PR_SET_PDEATHSIG took: stop at once (still blocked)
    if drop_privileges is not None:
        try:
            drop_privileges()
        except OSError as e:
            sys.stderr.write("pyisolate supervisor: %s\n" % e)
            os.kill(child, signal.SIGKILL)
    try:
        _supervise(child)
    finally:
        os._exit(70)  # never back into the bootstrap's code
