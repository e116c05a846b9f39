"""Entry of a guest started elsewhere (a Ray job): ``python -m pyisolate._guest.remote``.

It needs PYISOLATE_CONNECT, PYISOLATE_PEER_SHA256 and PYISOLATE_TOKEN (from the host's slot) and PYISOLATE_MODULE_PATH
(the extension's folder on this node), then runs exactly what a local guest runs: bootstrap.py, which dials the host
before any confinement it is asked for (PYISOLATE_LANDLOCK, ...), checks the pin, sends the token and serves.
"""

import os
import runpy
import sys


def main() -> None:
    if "PYISOLATE_CONNECT" not in os.environ:
        sys.stderr.write(
            "pyisolate guest: PYISOLATE_CONNECT is not set; this entry is started with a host's slot env\n"
        )
        raise SystemExit(2)
    runpy.run_path(os.path.join(os.path.dirname(os.path.abspath(__file__)), "bootstrap.py"), run_name="__main__")


if __name__ == "__main__":
    main()
