"""Activate the extension's venv from inside the guest, after confinement: the host never starts the venv's files.

The host starts the base interpreter it recorded when it built the venv (``-I -S``), not ``venv/bin/python``: install
code can replace that file, and the interpreter reads the venv's ``pyvenv.cfg`` (whose ``home`` picks the stdlib)
before the first line of the bootstrap. ``PYISOLATE_VENV`` names the venv; once the bootstrap has confined itself,
``activate_from_env`` does what start-up and ``site`` do for a venv's own interpreter: ``sys.prefix`` and
``sys.exec_prefix`` become the venv, its site-packages (and their ``.pth`` files) join ``sys.path`` before the base
interpreter's (only with system site-packages), and ``sys.executable`` names the venv's python for subprocesses.
"""

import json
import os
import sys

__all__ = ["VENV_ENV", "activate", "activate_from_env"]

VENV_ENV = "PYISOLATE_VENV"


def activate(prefix, system_site_packages):
    """Make ``prefix`` this interpreter's venv: the site-packages and ``sys.*`` a venv's own python would have."""
    import site

    sys.prefix = sys.exec_prefix = prefix
    # As site.venv() sets them for `include-system-site-packages`: the venv first, the base install after it.
    site.PREFIXES = [prefix] + ([sys.base_prefix, sys.base_exec_prefix] if system_site_packages else [])
    site.ENABLE_USER_SITE = False
    # sys.executable is still the base interpreter here, so site.venv() finds no pyvenv.cfg and reads nothing of
    # the venv's: PREFIXES alone decides, and addsitepackages runs the venv's .pth files (confined by now).
    site.main()
    sys.executable = os.path.join(prefix, "bin", "python")


def activate_from_env():
    """Activate the venv the host named in ``PYISOLATE_VENV``; without it, plain site processing (``-S`` skipped it).

    Returns the venv's folder, or None when the host named none.
    """
    spec = os.environ.pop(VENV_ENV, None)
    if spec is None:
        if sys.flags.no_site:
            import site

            site.main()
        return None
    cfg = json.loads(spec)
    prefix = cfg["prefix"]
    if not isinstance(prefix, str) or not os.path.isabs(prefix):
        raise ValueError(f"{VENV_ENV} names no absolute venv folder: {prefix!r}")
    activate(prefix, bool(cfg.get("system_site_packages", False)))
    return prefix
