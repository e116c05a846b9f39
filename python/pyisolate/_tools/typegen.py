"""`pyisolate types`: an extension's API as data, from its source text's type hints, by a pure `ast` walk.

The host reads the extension's .py files itself (no symlinks, capped sizes) and writes them to stdin as JSON
`{"files": [{"path": "pkg/mod.py", "text": "..."}], "className": null}`; this prints one JSON model on stdout
(the class, its methods, the named types they use, its events, warnings) that the host renders as a .d.ts.
Nothing of the extension is imported or executed: its code is hostile, and parsing it is all this does.
Run as a script (`python3 -I -S -c ...` with this folder on sys.path), so it imports no pyisolate module.
"""

from __future__ import annotations

import ast
import json
import sys

from typegen_types import UNKNOWN, Generator, Module, prim, union

# ExtensionLocal's and ExtensionBase's own names: never callable by the host (extension.py's FRAMEWORK_NAMES).
FRAMEWORK = frozenset(
    ("before_module_loaded", "on_module_loaded", "emit_event", "register_callee", "create_caller", "use_remote", "stop")
)
BASES = frozenset(("ExtensionBase", "SealedNodeExtension"))


class TypegenError(Exception):
    """The files hold no extension class the host could load, or more than one."""


def parse_files(files: list, warnings: list) -> list:
    modules = []
    for entry in files:
        path, text = entry["path"], entry["text"]
        try:
            modules.append(Module(path, ast.parse(text, filename=path)))
        except (SyntaxError, ValueError, RecursionError, MemoryError) as error:
            warnings.append(f"{path}: skipped, it does not parse ({type(error).__name__})")
    return modules


def find_class(gen: Generator, wanted) -> tuple:
    """(module, ClassDef) of the extension class: `wanted` ("Class" or "module:Class"), else the one subclass."""
    if wanted:
        name = wanted.rsplit(":", 1)[-1].rsplit(".", 1)[-1]
        if name not in gen.classes:
            raise TypegenError(f"no class named {name!r} in the extension's files")
        return gen.classes[name]
    # As the loader decides: exactly one subclass in the package, else the host names the class (extensionClass).
    found = [(m, n) for m in gen.modules for n in m.classes.values() if is_extension(gen, m, n, 0)]
    if len(found) != 1:
        names = ", ".join(sorted(n.name for _, n in found)) or "none"
        raise TypegenError(f"expected one ExtensionBase subclass, found {len(found)} ({names}); pass --class")
    return found[0]


def is_extension(gen: Generator, module: Module, node: ast.ClassDef, depth: int) -> bool:
    for base in node.bases:
        name = (module.qualify(base) or "").rsplit(".", 1)[-1]
        if name in BASES:
            return True
        if depth < 16 and name in gen.classes and is_extension(gen, *gen.classes[name], depth + 1):
            return True
    return False


def lineage(gen: Generator, module: Module, node: ast.ClassDef) -> list:
    """The class, then its package-local bases depth-first: where a method is looked up first."""
    out, todo = [], [(module, node)]
    while todo and len(out) < 64:
        module, node = todo.pop(0)
        if any(n is node for _, n in out):
            continue
        out.append((module, node))
        for base in node.bases:
            name = (module.qualify(base) or "").rsplit(".", 1)[-1]
            if name in gen.classes and name not in BASES:
                todo.append(gen.classes[name])
    return out


def method_model(gen: Generator, module: Module, fn) -> dict | None:
    decorators = {
        (module.qualify(d.func if isinstance(d, ast.Call) else d) or "").rsplit(".", 1)[-1] for d in fn.decorator_list
    }
    if decorators & {"property", "cached_property", "setter", "getter", "deleter"}:
        return None  # an attribute, not a method
    args = fn.args
    positional = list(getattr(args, "posonlyargs", [])) + list(args.args)
    if "staticmethod" not in decorators:
        positional = positional[1:]  # self or cls
    first_default = len(positional) - len(args.defaults)
    params = [
        {"name": a.arg, "type": gen.type_of(module, a.annotation), "optional": i >= first_default, "rest": False}
        for i, a in enumerate(positional)
    ]
    if args.vararg is not None:
        params.append(
            {
                "name": args.vararg.arg,
                "type": gen.type_of(module, args.vararg.annotation),
                "optional": True,
                "rest": True,
            }
        )
    keywords = [
        {"name": a.arg, "type": gen.type_of(module, a.annotation), "optional": d is not None}
        for a, d in zip(args.kwonlyargs, args.kw_defaults)
    ]
    returns = gen.type_of(module, fn.returns) if fn.returns is not None else UNKNOWN
    if isinstance(fn.returns, ast.Constant) and fn.returns.value is None:
        returns = prim("void")
    if isinstance(fn, ast.AsyncFunctionDef):
        returns = {"k": "promise", "of": returns}
    return {
        "name": fn.name,
        "doc": ast.get_docstring(fn) or "",
        "params": params,
        "keywords": keywords,
        "returns": returns,
    }


def events_of(gen: Generator, module: Module, node: ast.ClassDef, events: dict) -> None:
    """Adds to `events` (name -> payload types) each `self.emit_event("name", payload)` with a literal name."""
    for call in ast.walk(node):
        if (
            isinstance(call, ast.Call)
            and isinstance(call.func, ast.Attribute)
            and call.func.attr == "emit_event"
            and call.args
            and isinstance(call.args[0], ast.Constant)
            and isinstance(call.args[0].value, str)
        ):
            payload = call.args[1] if len(call.args) > 1 else None
            events.setdefault(call.args[0].value, []).append(payload_type(gen, module, payload))


def payload_type(gen: Generator, module: Module, node) -> dict:
    """What an event payload expression is known to be: a constant, or a dataclass / TypedDict of the package made
    on the spot (`Progress(done=1)`); anything else is unknown."""
    if node is None:
        return prim("null")
    if isinstance(node, ast.Constant) and type(node.value) in (str, int, float, bool, type(None)):
        return prim({str: "string", int: "number", float: "number", bool: "boolean"}.get(type(node.value), "null"))
    if isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id in gen.classes:
        return gen.local_class(node.func.id)
    return UNKNOWN


def generate(request: dict) -> dict:
    warnings = []
    gen = Generator(parse_files(request["files"], warnings))
    gen.warnings = warnings
    module, node = find_class(gen, request.get("className"))
    methods, events, seen = [], {}, set(FRAMEWORK)
    for owner_module, owner in lineage(gen, module, node):
        for fn in owner.body:
            if (
                isinstance(fn, (ast.FunctionDef, ast.AsyncFunctionDef))
                and not fn.name.startswith("_")
                and fn.name not in seen
            ):
                seen.add(fn.name)
                model = method_model(gen, owner_module, fn)
                if model is not None:
                    methods.append(model)
        events_of(gen, owner_module, owner, events)
    return {
        "className": node.name,
        "module": module.path,
        "doc": ast.get_docstring(node) or "",
        "methods": methods,
        "types": [t for t in gen.types.values() if t],
        "events": [{"name": name, "type": union(types)} for name, types in events.items()],
        "warnings": warnings,
    }


def main() -> int:
    try:  # the parser's own bounds, whatever the host's timeout does
        import resource

        resource.setrlimit(resource.RLIMIT_CPU, (30, 30))
        resource.setrlimit(resource.RLIMIT_AS, (2 << 30, 2 << 30))
    except (ImportError, ValueError, OSError):
        pass
    sys.setrecursionlimit(4000)
    try:
        result = generate(json.load(sys.stdin))
    except TypegenError as error:
        result = {"error": str(error)}
    json.dump(result, sys.stdout)
    return 0


if __name__ == "__main__":
    sys.exit(main())
