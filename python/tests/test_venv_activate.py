"""The guest activates a venv from the base interpreter as the venv's own python would have, and runs nothing before."""

import json
import os
import subprocess
import sys
import tempfile
import unittest
import venv

RUNTIME = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
BASE = os.path.realpath(getattr(sys, "_base_executable", sys.executable))
REPORT = "import json, sys; print(json.dumps([sys.path, sys.prefix, sys.exec_prefix]))"
ACTIVATE = (
    "import sys; sys.path.insert(0, sys.argv[1]); from pyisolate._guest import venv_activate as v; sys.path.pop(0); "
    "v.activate_from_env(); " + REPORT + "; print(sys.executable)"
)


def _run(argv, env=None):
    return subprocess.run(argv, capture_output=True, text=True, env=env, check=True, timeout=60).stdout.splitlines()


class VenvActivateTest(unittest.TestCase):
    def _compare(self, system_site_packages):
        with tempfile.TemporaryDirectory() as tmp:
            prefix = os.path.realpath(os.path.join(tmp, "venv"))
            venv.EnvBuilder(system_site_packages=system_site_packages, symlinks=True, with_pip=False).create(prefix)
            own = _run([os.path.join(prefix, "bin", "python"), "-I", "-c", REPORT])
            spec = json.dumps({"prefix": prefix, "system_site_packages": system_site_packages})
            env = {**os.environ, "PYISOLATE_VENV": spec}
            activated = _run([BASE, "-I", "-S", "-c", ACTIVATE, RUNTIME], env)
            self.assertEqual(json.loads(activated[0]), json.loads(own[0]))
            self.assertEqual(activated[1], os.path.join(prefix, "bin", "python"))

    def test_sealed_venv_gets_the_same_sys_path_and_prefix_as_its_own_python(self):
        self._compare(False)

    def test_venv_with_system_site_packages_gets_the_base_site_packages_after_its_own(self):
        self._compare(True)

    def test_a_pth_in_the_venv_runs_only_when_activated_never_at_interpreter_start(self):
        with tempfile.TemporaryDirectory() as tmp:
            prefix = os.path.realpath(os.path.join(tmp, "venv"))
            venv.EnvBuilder(symlinks=True, with_pip=False).create(prefix)
            site = os.path.join(prefix, "lib", "python%d.%d" % sys.version_info[:2], "site-packages")
            marker = os.path.join(tmp, "marker")
            with open(os.path.join(site, "zz_marker.pth"), "w") as f:
                f.write("import os; open(%r, 'a').write('ran\\n')\n" % marker)
            # The base interpreter with -I -S reads nothing of the venv: no .pth, no pyvenv.cfg.
            _run([BASE, "-I", "-S", "-c", "pass"], {**os.environ, "PYISOLATE_VENV": json.dumps({"prefix": prefix})})
            self.assertFalse(os.path.exists(marker))
            _run(
                [BASE, "-I", "-S", "-c", ACTIVATE, RUNTIME],
                {**os.environ, "PYISOLATE_VENV": json.dumps({"prefix": prefix})},
            )
            with open(marker) as f:
                self.assertEqual(f.read(), "ran\n")

    def test_a_relative_prefix_is_refused(self):
        code = "import sys; sys.path.insert(0, sys.argv[1]); from pyisolate._guest import venv_activate as v\ntry:\n    v.activate_from_env()\nexcept ValueError as e:\n    print('refused', e)"
        out = _run(
            [BASE, "-I", "-S", "-c", code, RUNTIME], {**os.environ, "PYISOLATE_VENV": json.dumps({"prefix": "venv"})}
        )
        self.assertTrue(out and out[0].startswith("refused"), out)


if __name__ == "__main__":
    unittest.main()
