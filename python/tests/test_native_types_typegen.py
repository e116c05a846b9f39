"""The type generator's ast walk: Python hints to type nodes, the extension class and its API, hostile source."""

import json
import os
import subprocess
import sys
import tempfile
import textwrap
import unittest

TOOLS = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "pyisolate", "_tools")
sys.path.insert(0, TOOLS)
import typegen  # noqa: E402  (a script folder, not a package)

N, S, B, NULL, U = ({"k": "prim", "n": n} for n in ("number", "string", "boolean", "null", "unknown"))
TENSOR = {"k": "prim", "n": "Tensor"}


def api(source, class_name=None, extra=()):
    files = [{"path": "ext/__init__.py", "text": textwrap.dedent(source)}, *extra]
    return typegen.generate({"files": files, "className": class_name})


def method(model, name):
    return next(m for m in model["methods"] if m["name"] == name)


def hint(annotation, prelude=""):
    """The type node of one parameter annotated `annotation`."""
    model = api(f"""
        from __future__ import annotations
        {prelude}
        from pyisolate import ExtensionBase
        class E(ExtensionBase):
            def m(self, x: {annotation}): ...
        """)
    return method(model, "m")["params"][0]["type"]


class HintTest(unittest.TestCase):
    def test_primitives_and_containers(self):
        self.assertEqual(hint("int"), N)
        self.assertEqual(hint("bytes"), {"k": "prim", "n": "Uint8Array"})
        self.assertEqual(hint("list[str]"), {"k": "array", "of": S})
        self.assertEqual(hint("Dict[str, float]", "from typing import Dict"), {"k": "record", "of": N})
        self.assertEqual(hint("tuple[int, str]"), {"k": "tuple", "items": [N, S]})
        self.assertEqual(hint("tuple[int, ...]"), {"k": "array", "of": N})
        self.assertEqual(hint("typing.Sequence[bool]", "import typing"), {"k": "array", "of": B})

    def test_optional_union_and_pep604_are_unions_without_repeats(self):
        expected = {"k": "union", "of": [S, NULL]}
        self.assertEqual(hint("Optional[str]", "from typing import Optional"), expected)
        self.assertEqual(hint("str | None"), expected)
        self.assertEqual(hint("Union[str, None, str]", "from typing import Union"), expected)
        self.assertEqual(hint("Union[int, object]", "from typing import Union"), U, "unknown absorbs a union")

    def test_literal_annotated_and_forward_references(self):
        self.assertEqual(
            hint('Literal["a", 2, -3, True]', "from typing import Literal"),
            {"k": "union", "of": [{"k": "literal", "v": v} for v in ("a", 2, -3, True)]},
        )
        self.assertEqual(hint('Annotated[int, "meta"]', "from typing_extensions import Annotated"), N)
        self.assertEqual(hint("'list[int]'"), {"k": "array", "of": N})

    def test_numpy_and_torch_arrays_are_tensors_through_any_alias(self):
        self.assertEqual(hint("np.ndarray", "import numpy as np"), TENSOR)
        self.assertEqual(
            hint("NDArray[np.float32]", "import numpy as np\n        from numpy.typing import NDArray"), TENSOR
        )
        self.assertEqual(hint("torch.Tensor", "import torch"), TENSOR)
        self.assertEqual(hint("T", "from torch import Tensor as T"), TENSOR)
        self.assertEqual(hint("np.float32", "import numpy as np"), N)

    def test_unknown_names_and_unsupported_forms_are_unknown(self):
        self.assertEqual(hint("SomethingElse"), U)
        self.assertEqual(hint("set[int]"), U, "sets do not travel")
        self.assertEqual(hint("'this is ( not python'"), U)


class ApiTest(unittest.TestCase):
    SOURCE = """
        import dataclasses, enum
        from typing import NamedTuple, NotRequired, TypedDict
        from pyisolate import ExtensionBase

        @dataclasses.dataclass
        class Point:
            \"\"\"A point.\"\"\"
            x: float
            tags: list[str] = dataclasses.field(default_factory=list)

        class Opts(TypedDict, total=False):
            scale: float

        class Job(TypedDict):
            id: int
            retries: NotRequired[int]

        class Pair(NamedTuple):
            a: int
            b: str

        class Level(enum.IntEnum):
            LOW = 1

        class Base(ExtensionBase):
            def inherited(self) -> Point: ...
            def _private(self): ...

        class Ext(Base):
            \"\"\"The extension.\"\"\"
            def __init__(self): ...
            async def run(self, p: Point, opts: Opts, *rest: int, flag: bool = False) -> Pair:
                self.emit_event("progress", Point(x=1.0))
                self.emit_event("note", "text")
                self.emit_event("note")
                self.emit_event("raw", {"done": 1})
                self.emit_event(name_not_literal, 1)
            @staticmethod
            def helper(job: Job, level: Level = Level.LOW) -> None: ...
            @property
            def size(self) -> int: ...
            def stop(self): ...
        """

    def setUp(self):
        self.model = api(self.SOURCE, "ext:Ext")  # Base is a subclass too: the host names the class, as for the loader

    def test_finds_the_class_through_a_local_base_and_lists_what_the_host_may_call(self):
        self.assertEqual(self.model["className"], "Ext")
        self.assertEqual(self.model["doc"], "The extension.")
        self.assertEqual([m["name"] for m in self.model["methods"]], ["run", "helper", "inherited"])
        self.assertEqual(
            self.model["events"],
            [
                {"name": "progress", "type": {"k": "ref", "n": "Point"}},
                {"name": "note", "type": {"k": "union", "of": [S, NULL]}},
                {"name": "raw", "type": U},
            ],
        )

    def test_parameters_keep_order_defaults_rest_and_keyword_only(self):
        run = method(self.model, "run")
        self.assertEqual(
            [(p["name"], p["optional"], p["rest"]) for p in run["params"]],
            [("p", False, False), ("opts", False, False), ("rest", True, True)],
        )
        self.assertEqual(run["keywords"], [{"name": "flag", "type": B, "optional": True}])
        self.assertEqual(run["returns"], {"k": "promise", "of": {"k": "ref", "n": "Pair"}})
        helper = method(self.model, "helper")
        self.assertEqual([p["name"] for p in helper["params"]], ["job", "level"], "a staticmethod has no self")
        self.assertEqual(helper["params"][1]["type"], N, "an IntEnum travels as its int")
        self.assertEqual(helper["returns"], {"k": "prim", "n": "void"})

    def test_dataclasses_typeddicts_and_namedtuples_become_named_types(self):
        types = {t["name"]: t for t in self.model["types"]}
        self.assertEqual(types["Point"]["doc"], "A point.")
        self.assertEqual(
            [(f["name"], f["optional"]) for f in types["Point"]["fields"]], [("x", False), ("tags", False)]
        )
        self.assertEqual([(f["name"], f["optional"]) for f in types["Opts"]["fields"]], [("scale", True)])
        self.assertEqual(
            [(f["name"], f["optional"]) for f in types["Job"]["fields"]], [("id", False), ("retries", True)]
        )
        self.assertEqual(
            types["Pair"], {"name": "Pair", "kind": "tuple", "doc": "", "items": [N, S], "labels": ["a", "b"]}
        )


class HostileSourceTest(unittest.TestCase):
    def test_the_source_is_parsed_never_run(self):
        with tempfile.TemporaryDirectory() as tmp:
            marker = os.path.join(tmp, "ran")
            api(f"""
                open({marker!r}, "w").write("x")
                import os; os.system("touch {marker}")
                from pyisolate import ExtensionBase
                class E(ExtensionBase):
                    def m(self, x: __import__("os").system("touch {marker}")) -> int: ...
                """)
            self.assertFalse(os.path.exists(marker))

    def test_a_file_that_does_not_parse_is_skipped_with_a_warning(self):
        model = api(
            "from pyisolate import ExtensionBase\nclass E(ExtensionBase):\n    def m(self) -> int: ...\n",
            extra=[{"path": "ext/broken.py", "text": "def (:"}],
        )
        self.assertEqual(model["className"], "E")
        self.assertEqual(model["warnings"], ["ext/broken.py: skipped, it does not parse (SyntaxError)"])

    def test_deep_nesting_is_bounded(self):
        deep = "list[" * 150 + "int" + "]" * 150
        node = hint(deep)
        depth = 0
        while node.get("k") == "array":
            node, depth = node["of"], depth + 1
        self.assertLessEqual(depth, 30)
        self.assertEqual(node, U)

    def test_no_class_or_two_classes_is_an_error_naming_them(self):
        with self.assertRaisesRegex(typegen.TypegenError, r"found 0 \(none\)"):
            api("x = 1\n")
        two = "from pyisolate import ExtensionBase\nclass A(ExtensionBase): ...\nclass B(ExtensionBase): ...\n"
        with self.assertRaisesRegex(typegen.TypegenError, r"found 2 \(A, B\); pass --class"):
            api(two)
        self.assertEqual(api(two, "ext:B")["className"], "B")

    def test_runs_as_the_host_runs_it_isolated_reading_stdin(self):
        request = {
            "files": [
                {
                    "path": "e/__init__.py",
                    "text": "from pyisolate import ExtensionBase\nclass E(ExtensionBase):\n    def m(self) -> str: ...\n",
                }
            ]
        }
        code = f"import sys; sys.path.insert(0, {TOOLS!r}); import typegen; sys.exit(typegen.main())"
        out = subprocess.run(
            [sys.executable, "-I", "-S", "-c", code],
            input=json.dumps(request),
            capture_output=True,
            text=True,
            timeout=60,
            check=True,
        )
        self.assertEqual(json.loads(out.stdout)["methods"][0]["returns"], S)


if __name__ == "__main__":
    unittest.main()
