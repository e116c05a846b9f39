"""Python type hints (as `ast` nodes, never evaluated) to the small type nodes the host renders as TypeScript.

A node is `{"k": "prim", "n": "number"}`, `array`/`record` (`of`), `tuple` (`items`), `union` (`of`), `literal`
(`v`), `fn` (`params`, `ret`), `promise` (`of`) or `ref` (`n`, a dataclass, TypedDict or NamedTuple of the package,
described once in `Generator.types`). Whatever is not understood is `unknown`.
"""

from __future__ import annotations

import ast

MAX_DEPTH = 24  # nesting of one annotation; deeper is "unknown"
PRIMS = {
    "int": "number",
    "float": "number",
    "complex": "unknown",
    "str": "string",
    "bool": "boolean",
    "bytes": "Uint8Array",
    "bytearray": "Uint8Array",
    "memoryview": "Uint8Array",
    "None": "null",
    "NoneType": "null",
    "Any": "unknown",
    "object": "unknown",
}
TENSORS = frozenset(("numpy.ndarray", "numpy.typing.NDArray", "torch.Tensor", "numpy.ndarray.ndarray"))
LISTS = frozenset(("list", "List", "Sequence", "MutableSequence", "Iterable", "Collection", "Iterator"))
DICTS = frozenset(("dict", "Dict", "Mapping", "MutableMapping", "OrderedDict", "DefaultDict", "defaultdict"))
WRAPPERS = frozenset(
    ("Annotated", "Final", "ClassVar", "Required", "NotRequired", "ReadOnly", "Awaitable", "Coroutine")
)
TYPING_MODULES = frozenset(("typing", "typing_extensions", "collections.abc", "collections", "builtins"))


def prim(name: str) -> dict:
    return {"k": "prim", "n": name}


UNKNOWN = prim("unknown")


class Module:
    """One parsed file: its import aliases (so `np.ndarray` and `NDArray` resolve) and its classes."""

    def __init__(self, path: str, tree: ast.Module) -> None:
        self.path = path
        self.aliases = {}  # local name -> qualified name
        self.classes = {}
        for node in tree.body:
            if isinstance(node, ast.ClassDef):
                self.classes[node.name] = node
            # `if TYPE_CHECKING:` and `try:` imports name types too
            for inner in [node] + (node.body if isinstance(node, (ast.If, ast.Try)) else []):
                self._import(inner)

    def _import(self, node) -> None:
        if isinstance(node, ast.Import):
            for a in node.names:
                self.aliases[a.asname or a.name.split(".")[0]] = a.name if a.asname else a.name.split(".")[0]
        elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
            for a in node.names:
                self.aliases[a.asname or a.name] = f"{node.module}.{a.name}"

    def qualify(self, node) -> str | None:
        """The dotted, alias-resolved name of a Name or Attribute chain, or None."""
        parts = []
        while isinstance(node, ast.Attribute):
            parts.append(node.attr)
            node = node.value
        if not isinstance(node, ast.Name):
            return None
        parts.append(self.aliases.get(node.id, node.id))
        return ".".join(reversed(parts))


class Generator:
    """Classes of the whole package by name, and the named types the API refers to, filled as they are met."""

    def __init__(self, modules: list) -> None:
        self.modules = modules
        self.classes = {}  # name -> (module, ClassDef); the first definition wins
        for module in modules:
            for name, node in module.classes.items():
                self.classes.setdefault(name, (module, node))
        self.types = {}  # name -> named type model (interface, tuple or alias)
        self.warnings = []

    # --- annotations -> type nodes -------------------------------------------------------------------------
    def type_of(self, module: Module, node, depth: int = 0) -> dict:
        if node is None or depth > MAX_DEPTH:
            return UNKNOWN
        if isinstance(node, ast.Constant):
            if node.value is None:
                return prim("null")
            if isinstance(node.value, str) and len(node.value) <= 2000:  # a forward reference
                try:
                    return self.type_of(module, ast.parse(node.value, mode="eval").body, depth + 1)
                except (SyntaxError, ValueError, RecursionError, MemoryError):
                    return UNKNOWN
            return UNKNOWN
        if isinstance(node, ast.BinOp) and isinstance(node.op, ast.BitOr):
            return union([self.type_of(module, node.left, depth + 1), self.type_of(module, node.right, depth + 1)])
        if isinstance(node, ast.Subscript):
            return self.generic(module, node, depth)
        name = module.qualify(node)
        return UNKNOWN if name is None else self.named(module, name)

    def named(self, module: Module, name: str) -> dict:
        short = name.rsplit(".", 1)[-1]
        root = name.rsplit(".", 1)[0] if "." in name else "builtins"
        if name in TENSORS or (name in ("ndarray", "NDArray", "Tensor") and name not in self.classes):
            return prim("Tensor")
        if root.startswith("numpy") and short != "ndarray":
            return prim("boolean") if short.startswith("bool") else prim("number")  # numpy scalars
        if root in TYPING_MODULES or "." not in name:
            if short in PRIMS and short not in self.classes:
                return prim(PRIMS[short])
            if short in LISTS and short not in self.classes:
                return {"k": "array", "of": UNKNOWN}
            if short in DICTS and short not in self.classes:
                return {"k": "record", "of": UNKNOWN}
        if "." not in name and name in self.classes:
            return self.local_class(name)
        return UNKNOWN

    def generic(self, module: Module, node: ast.Subscript, depth: int) -> dict:
        base = module.qualify(node.value) or ""
        short = base.rsplit(".", 1)[-1]
        sl = node.slice.value if type(node.slice).__name__ == "Index" else node.slice  # Python 3.8's wrapper
        args = list(sl.elts) if isinstance(sl, ast.Tuple) else [sl]
        sub = [self.type_of(module, a, depth + 1) for a in args]
        if base in TENSORS or short == "NDArray":
            return prim("Tensor")
        if short == "Optional":
            return union([sub[0], prim("null")])
        if short == "Union":
            return union(sub)
        if short in WRAPPERS:
            return sub[-1] if short == "Coroutine" else sub[0]
        if short in LISTS or short in ("set", "Set", "frozenset", "FrozenSet", "AbstractSet"):
            return {"k": "array", "of": sub[0]} if short in LISTS else UNKNOWN  # sets do not travel
        if short in ("tuple", "Tuple"):
            if len(args) == 2 and isinstance(args[1], ast.Constant) and args[1].value is Ellipsis:
                return {"k": "array", "of": sub[0]}
            if len(args) == 1 and isinstance(args[0], ast.Tuple) and not args[0].elts:
                return {"k": "tuple", "items": []}
            return {"k": "tuple", "items": sub}
        if short in DICTS:
            return {"k": "record", "of": sub[-1]}
        if short == "Literal":
            return union([literal(a) for a in args])
        if short == "Callable" and len(args) == 2 and isinstance(args[0], ast.List):
            params = [self.type_of(module, a, depth + 1) for a in args[0].elts]
            return {"k": "fn", "params": params, "ret": sub[1]}
        return UNKNOWN

    # --- classes the API refers to -------------------------------------------------------------------------
    def local_class(self, name: str) -> dict:
        if name in self.types:
            return {"k": "ref", "n": name} if self.types[name] is not None else UNKNOWN
        module, node = self.classes[name]
        bases = {(module.qualify(b) or "").rsplit(".", 1)[-1] for b in node.bases}
        if "IntEnum" in bases or "IntFlag" in bases:
            return prim("number")
        if "StrEnum" in bases or bases >= {"str", "Enum"}:
            return prim("string")
        decorators = {
            (module.qualify(d.func if isinstance(d, ast.Call) else d) or "").rsplit(".", 1)[-1]
            for d in node.decorator_list
        }
        typed_dict = "TypedDict" in bases or any(
            b in self.types and self.types[b] and self.types[b].get("typedDict") for b in bases
        )
        if "dataclass" not in decorators and not typed_dict and "NamedTuple" not in bases:
            self.types[name] = None  # a plain class, enum, ...: its instances do not travel
            return UNKNOWN
        self.types[name] = {}  # placeholder: a field may refer back to this class
        total = not any(
            k.arg == "total" and isinstance(k.value, ast.Constant) and k.value.value is False for k in node.keywords
        )
        fields = []
        for stmt in node.body:
            if isinstance(stmt, ast.AnnAssign) and isinstance(stmt.target, ast.Name):
                kind = (
                    (module.qualify(stmt.annotation.value) or "").rsplit(".", 1)[-1]
                    if isinstance(stmt.annotation, ast.Subscript)
                    else ""
                )
                if kind == "ClassVar":
                    continue
                optional = typed_dict and (kind == "NotRequired" or (not total and kind != "Required"))
                fields.append(
                    {"name": stmt.target.id, "type": self.type_of(module, stmt.annotation), "optional": optional}
                )
        if "NamedTuple" in bases:  # travels as a list
            self.types[name] = {
                "name": name,
                "kind": "tuple",
                "doc": ast.get_docstring(node) or "",
                "items": [f["type"] for f in fields],
                "labels": [f["name"] for f in fields],
            }
        else:
            parents = [b for b in bases if b in self.classes and self.local_class(b)["k"] == "ref"]
            self.types[name] = {
                "name": name,
                "kind": "interface",
                "doc": ast.get_docstring(node) or "",
                "fields": fields,
                "extends": parents,
                "typedDict": typed_dict,
            }
        return {"k": "ref", "n": name}


def union(members: list) -> dict:
    """A union without repeats; `unknown` absorbs the rest, one member is itself."""
    flat = []
    for m in members:
        for x in m["of"] if m["k"] == "union" else [m]:
            if x == UNKNOWN:
                return UNKNOWN
            if x not in flat:
                flat.append(x)
    return flat[0] if len(flat) == 1 else {"k": "union", "of": flat}


def literal(node) -> dict:
    if isinstance(node, ast.UnaryOp) and isinstance(node.op, ast.USub) and isinstance(node.operand, ast.Constant):
        value = node.operand.value
        return {"k": "literal", "v": -value} if type(value) in (int, float) else UNKNOWN
    if isinstance(node, ast.Constant) and (node.value is None or type(node.value) in (str, int, bool, float)):
        if type(node.value) is int and abs(node.value) > 2**53:
            return prim("bigint")
        return prim("null") if node.value is None else {"k": "literal", "v": node.value}
    return UNKNOWN
