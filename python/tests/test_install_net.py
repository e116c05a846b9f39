"""An install's road to the index proxy: under Landlock TCP to the proxy's port alone; under bwrap a forwarder to its socket."""

import json
import os
import socket
import subprocess
import sys
import tempfile
import threading
import unittest

from tests.landlock_support import ABI, GUEST_DIR, PYTHON_PREFIXES, WHY

LAUNCHER = os.path.join(GUEST_DIR, "confine_exec.py")
FORWARDER = os.path.join(GUEST_DIR, "install_net.py")

# What the exec'd "installer" tries; argv: the proxy's port, another host port, a folder to rename inside.
PROGRAM = r"""
import json, os, socket, sys
def attempt(fn):
    try:
        fn()
        return "ok"
    except PermissionError:
        return "denied"
    except OSError as e:
        return "error %s" % e.errno
def tcp(port, family=socket.AF_INET, host="127.0.0.1"):
    s = socket.socket(family, socket.SOCK_STREAM)
    s.settimeout(5)
    s.connect((host, port))
    s.close()
def rename():
    os.makedirs(os.path.join(sys.argv[3], "a", "moved"))
    os.makedirs(os.path.join(sys.argv[3], "b"))
    os.rename(os.path.join(sys.argv[3], "a", "moved"), os.path.join(sys.argv[3], "b", "moved"))
print(json.dumps({
    "proxy": attempt(lambda: tcp(int(sys.argv[1]))),
    "other_port": attempt(lambda: tcp(int(sys.argv[2]))),
    "udp": attempt(lambda: socket.socket(socket.AF_INET, socket.SOCK_DGRAM).close()),
    "sctp": attempt(lambda: socket.socket(socket.AF_INET, socket.SOCK_STREAM, 132).close()),
    "mptcp": attempt(lambda: socket.socket(socket.AF_INET, socket.SOCK_STREAM, 262).close()),
    "netlink": attempt(lambda: socket.socket(socket.AF_NETLINK, socket.SOCK_RAW, 0).close()),
    "tcp6_socket": attempt(lambda: socket.socket(socket.AF_INET6, socket.SOCK_STREAM).close()),
    "unix": attempt(lambda: socket.socket(socket.AF_UNIX).close()),
    "socketpair": attempt(lambda: [s.close() for s in socket.socketpair()]),
    "rename_across_folders": attempt(rename),
}))
"""


def _listener():
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    s.bind(("127.0.0.1", 0))
    s.listen(8)
    return s


class ConfineToProxyPortTest(unittest.TestCase):
    def setUp(self):
        self.tmp = tempfile.TemporaryDirectory()
        self.build = os.path.join(self.tmp.name, "build")
        os.mkdir(self.build)
        self.proxy, self.other = _listener(), _listener()

    def tearDown(self):
        self.proxy.close()
        self.other.close()
        self.tmp.cleanup()

    def launch(self, rules):
        env = {"PATH": os.environ.get("PATH", "/usr/bin"), "PYISOLATE_LANDLOCK": json.dumps(rules)}
        argv = [
            os.path.realpath(sys.executable),
            "-S",
            "-c",
            PROGRAM,
            str(self.proxy.getsockname()[1]),
            str(self.other.getsockname()[1]),
            self.build,
        ]
        return subprocess.run(
            [sys.executable, "-I", "-S", LAUNCHER, "--"] + argv, env=env, capture_output=True, text=True, timeout=60
        )

    def rules(self, **extra):
        return dict({"read_only": PYTHON_PREFIXES, "writable": [self.build, "/dev/null"], "cwd": self.build}, **extra)

    @unittest.skipIf(ABI < 4, "Landlock ABI %d cannot confine TCP (needs 4): %s" % (ABI, WHY))
    def test_control_with_the_network_every_probe_succeeds(self):
        r = self.launch(self.rules(network=True))
        self.assertEqual(r.returncode, 0, r.stderr)
        out = json.loads(r.stdout)
        self.assertEqual((out["proxy"], out["other_port"], out["udp"], out["netlink"]), ("ok", "ok", "ok", "ok"))

    @unittest.skipIf(ABI < 4, "Landlock ABI %d cannot confine TCP (needs 4): %s" % (ABI, WHY))
    def test_with_a_proxy_port_only_tcp_to_that_port_is_possible(self):
        r = self.launch(self.rules(network=False, proxy_port=self.proxy.getsockname()[1]))
        self.assertEqual(r.returncode, 0, r.stderr)
        out = json.loads(r.stdout)
        self.assertEqual(out["proxy"], "ok")
        self.assertEqual(out["other_port"], "denied")
        for key in ("udp", "sctp", "mptcp", "netlink", "unix"):
            self.assertEqual(out[key], "denied", key)
        self.assertEqual(out["tcp6_socket"], "ok", "TCP over IPv6 is still TCP: Landlock's port rule governs it")
        self.assertEqual(out["socketpair"], "ok")
        self.assertEqual(out["rename_across_folders"], "ok", "the stacked layer grants REFER where the first allows it")

    def test_a_proxy_port_that_is_not_a_port_never_runs_the_command(self):
        for bad in ("3128", 0, 70000, True):
            r = self.launch(self.rules(network=False, proxy_port=bad))
            self.assertEqual(r.returncode, 4, (bad, r.stderr))
            self.assertIn("refusing to run", r.stderr)


class ForwarderTest(unittest.TestCase):
    """install_net.py as bwrap runs it: 127.0.0.1:PORT relays to the proxy's Unix socket; the installer's status comes back."""

    def setUp(self):
        self.tmp = tempfile.TemporaryDirectory()
        self.sock_path = os.path.join(self.tmp.name, "proxy.sock")
        self.server = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.server.bind(self.sock_path)
        self.server.listen(4)
        threading.Thread(target=self._serve, daemon=True).start()

    def _serve(self):
        while True:
            try:
                c, _ = self.server.accept()
            except OSError:
                return
            c.sendall(b"proxy says " + c.recv(100))
            c.close()

    def tearDown(self):
        self.server.close()
        self.tmp.cleanup()

    def test_the_installer_reaches_the_proxy_socket_through_the_loopback_port_and_its_exit_status_is_kept(self):
        probe = _listener()
        port = probe.getsockname()[1]
        probe.close()
        child = (
            "import socket, sys; s = socket.create_connection(('127.0.0.1', %d), timeout=5); s.sendall(b'ping'); print(s.recv(100).decode()); sys.exit(3)"
            % port
        )
        r = subprocess.run(
            [
                sys.executable,
                "-I",
                "-S",
                FORWARDER,
                "--port",
                str(port),
                "--socket",
                self.sock_path,
                "--",
                sys.executable,
                "-c",
                child,
            ],
            capture_output=True,
            text=True,
            timeout=60,
        )
        self.assertEqual(r.returncode, 3, r.stderr)
        self.assertEqual(r.stdout.strip(), "proxy says ping")

    def test_a_relative_program_is_a_usage_error(self):
        r = subprocess.run(
            [sys.executable, "-I", "-S", FORWARDER, "--port", "1", "--socket", self.sock_path, "--", "python3"],
            capture_output=True,
            timeout=30,
        )
        self.assertEqual(r.returncode, 2)


if __name__ == "__main__":
    unittest.main()
