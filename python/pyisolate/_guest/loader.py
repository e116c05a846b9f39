"""Import the extension package, pick its ExtensionBase subclass and run the load hooks."""

from __future__ import annotations

import importlib
import importlib.util
import inspect
import os
import sys

from .extension import ExtensionBase


class ExtensionLoadError(Exception):
    """The extension package is not shaped the way the host was told it is."""


async def load_extension(module_path: str, extension_class=None, on_instance=None) -> tuple:
    """Load the extension package at `module_path`; return (instance, package module, class).

    Order of events:
    - `extension_class` given ("pkg.module:ClassName"): import that class, instantiate it,
      run before_module_loaded, import the extension package, run on_module_loaded(package).
      The hook can thus prepare things before the package is imported (unless the class lives
      in the package itself, whose import it already triggered).
    - not given: import the package, find its one ExtensionBase subclass, instantiate it, run
      before_module_loaded, then on_module_loaded(package).
    `on_instance(instance)` runs before the hooks (the session registers the extension as a call target there,
    so that the hooks find it registered, as in pyisolate). Hooks may be plain functions or coroutines.
    """
    path, name = _package_location(module_path)
    _put_on_path(path)
    if extension_class:
        cls = _import_class(extension_class, name, lambda: _import_package(name, path))
        instance = cls()
        _announce(on_instance, instance)
        await _run_hook(instance.before_module_loaded)
        module = _import_package(name, path)
    else:
        module = _import_package(name, path)
        cls = _discover(module)
        instance = cls()
        _announce(on_instance, instance)
        await _run_hook(instance.before_module_loaded)
    await _run_hook(instance.on_module_loaded, module)
    return instance, module, cls


def module_name(folder: str) -> str:
    """The module name of an extension folder, as pyisolate 0.10 names it: '-' and '.' become '_'."""
    return folder.replace("-", "_").replace(".", "_")


def _put_on_path(path: str) -> None:
    # Its parent first, so that the package wins over a same-named file inside it; then the folder itself, so that
    # modules beside __init__.py import absolutely (`import nodes`), as under pyisolate (whose worker runs in it).
    parent = os.path.dirname(path)
    if not sys.path or sys.path[0] != parent:
        sys.path.insert(0, parent)
    if path not in sys.path:
        sys.path.insert(1, path)


def _announce(on_instance, instance) -> None:
    if on_instance is not None:
        on_instance(instance)


async def _run_hook(hook, *args) -> None:
    result = hook(*args)
    if inspect.isawaitable(result):
        await result


def _package_location(module_path) -> tuple:
    if not isinstance(module_path, str) or not os.path.isabs(module_path):
        raise ExtensionLoadError(f"modulePath must be an absolute path, got {module_path!r}")
    path = os.path.normpath(module_path)
    if not os.path.isdir(path):
        raise ExtensionLoadError(f"extension folder {path} does not exist")
    if not os.path.isfile(os.path.join(path, "__init__.py")):
        raise ExtensionLoadError(f"{path} is not a Python package: it has no __init__.py")
    return path, module_name(os.path.basename(path))


def _import_package(name: str, path: str):
    _check_origin(sys.modules.get(name), name, path)
    if name in sys.modules or name == os.path.basename(path):
        module = importlib.import_module(name)
    else:
        module = _import_renamed(name, path)
    _check_origin(module, name, path)
    return module


def _import_renamed(name: str, path: str):
    # A folder whose name is no identifier ("my-nodes"): loaded from its __init__.py under the mapped name.
    spec = importlib.util.spec_from_file_location(
        name, os.path.join(path, "__init__.py"), submodule_search_locations=[path]
    )
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    try:
        spec.loader.exec_module(module)
    except BaseException:
        sys.modules.pop(name, None)
        raise
    return module


def _check_origin(module, name: str, path: str) -> None:
    # A folder named like a builtin or already-imported module would silently load the wrong code.
    if module is None:
        return
    where = getattr(module, "__file__", None)
    if not where or os.path.realpath(os.path.dirname(where)) != os.path.realpath(path):
        raise ExtensionLoadError(
            f"the extension package name {name!r} is already taken by {module!r}; rename the folder"
        )


def _import_class(spec, package_name: str, import_package) -> type:
    if not isinstance(spec, str) or spec.count(":") != 1:
        raise ExtensionLoadError(f"extensionClass must look like 'package.module:ClassName', got {spec!r}")
    dotted, qualname = spec.split(":")
    try:
        obj = importlib.import_module(dotted)
    except ModuleNotFoundError:
        # The class may live in the extension package under its mapped name: import the package, then retry.
        if dotted.split(".")[0] != package_name or package_name in sys.modules:
            raise
        import_package()
        obj = importlib.import_module(dotted)
    for part in qualname.split("."):
        obj = getattr(obj, part)  # AttributeError names what is missing
    if not (isinstance(obj, type) and issubclass(obj, ExtensionBase)):
        raise ExtensionLoadError(f"extensionClass {spec} is {obj!r}, not a subclass of pyisolate.ExtensionBase")
    return obj


def _discover(package) -> type:
    prefix = package.__name__
    # The package's namespace, plus the namespaces of the submodules it has already imported.
    modules = [package] + [m for n, m in sorted(sys.modules.items()) if n.startswith(prefix + ".") and m is not None]
    found = []
    for module in modules:
        for value in list(vars(module).values()):
            if (
                isinstance(value, type)
                and issubclass(value, ExtensionBase)
                and value is not ExtensionBase
                and value not in found
                and (value.__module__ == prefix or value.__module__.startswith(prefix + "."))
            ):
                found.append(value)
    if len(found) == 1:
        return found[0]
    if not found:
        raise ExtensionLoadError(
            f"extension package {prefix!r} defines no subclass of pyisolate.ExtensionBase; define one, "
            f"or set extensionClass ('package.module:ClassName')"
        )
    names = ", ".join(sorted(class_spec(c) for c in found))
    raise ExtensionLoadError(
        f"extension package {prefix!r} defines several ExtensionBase subclasses ({names}); "
        f"set extensionClass to the one to load"
    )


def class_spec(cls: type) -> str:
    """The "module:QualName" form of a class, as extensionClass and ready report it."""
    return f"{cls.__module__}:{cls.__qualname__}"
