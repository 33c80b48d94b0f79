"""The floors of DESIGN.md, checked by walking every import in ``src/ariasim``.

Floors, lowest first (a floor never imports a higher one):

* ground: ``errors``, ``utils``, ``io``, ``report``, ``parallel``;
* ``simulators`` (the truth) -- they never import a learner, an application or the CLI;
* methods: ``surrogates``, ``metrics``, ``export``, ``active``, ``shift``, ``discovery``,
  ``design`` -- they take arrays, tables or callables and never import ``simulators``,
  ``apps`` or ``cli``;
* ``apps`` -- name a simulator and wire it to methods; never import ``cli``;
* ``cli`` -- the only package that imports typer.

Besides the floors: no cycle between sub-packages, and no module imports a private
(``_name``) helper of another module (make it public where it lives instead).
Imports inside functions count: a lazy import is still a dependency.
"""

from __future__ import annotations

import ast
import itertools
from pathlib import Path

import pytest

SRC = Path(__file__).resolve().parents[1] / "src"

GROUND = {"errors", "utils", "io", "report", "parallel", ""}
METHODS = {"surrogates", "metrics", "export", "active", "shift", "discovery", "design"}
SIMULATORS = {"simulators"}
APPS = {"apps"}
CLI = {"cli", "__main__"}
_FLOOR = {
    **dict.fromkeys(GROUND, 0),
    **dict.fromkeys(SIMULATORS, 1),
    **dict.fromkeys(METHODS, 1),
    **dict.fromkeys(APPS, 2),
    **dict.fromkeys(CLI, 3),
}


def module_name(path: Path, src: Path = SRC) -> str:
    parts = list(path.relative_to(src).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts = parts[:-1]
    return ".".join(parts)


def imports_of(module: str, source: str, *, is_package: bool = False) -> list[tuple[int, str, str]]:
    """``(line, imported module, imported name or '')`` for every import in ``source``,
    relative imports resolved against ``module``."""
    out: list[tuple[int, str, str]] = []
    package = module if is_package else module.rpartition(".")[0]
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            out += [(node.lineno, a.name, "") for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")
                base = base[: len(base) - (node.level - 1)]
                target = ".".join(base + ([node.module] if node.module else []))
            else:
                target = node.module or ""
            out += [(node.lineno, target, a.name) for a in node.names]
    return out


def _part(module: str) -> str:
    """The top-level sub-package of an ``ariasim`` module (``""`` for ``ariasim``)."""
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else ""


def _subpackage(module: str) -> str:
    """Two levels: ``ariasim.apps.collider``, ``ariasim.simulators.photons``, else one."""
    parts = module.split(".")
    if len(parts) > 2 and parts[1] in ("apps", "simulators"):
        return ".".join(parts[:3])
    return ".".join(parts[:2])


def violations(modules: dict[str, tuple[str, bool]]) -> list[str]:
    """Every rule broken by ``{module: (source, is_package)}``."""
    found: list[str] = []
    edges: dict[str, set[str]] = {}
    for mod, (source, is_pkg) in sorted(modules.items()):
        me = _part(mod)
        for line, target, name in imports_of(mod, source, is_package=is_pkg):
            where = f"{mod}:{line}"
            top = target.split(".")[0]
            if top == "typer" and me not in CLI:
                found.append(f"{where} imports typer outside ariasim.cli")
            if top != "ariasim":
                continue
            full = f"{target}.{name}" if name and f"{target}.{name}" in modules else target
            other = _part(full)
            if me in METHODS and other in SIMULATORS | APPS | CLI:
                found.append(f"{where}: method package {me!r} imports {full}")
            elif me in SIMULATORS and other in METHODS | APPS | CLI:
                found.append(
                    f"{where}: simulator imports {full} (simulators never import "
                    "learners, applications or the CLI)"
                )
            elif me in GROUND and _FLOOR.get(other, 0) > 0:
                found.append(f"{where}: ground-floor module imports {full}")
            elif me in APPS and other in CLI:
                found.append(f"{where}: application imports the CLI ({full})")
            if (
                name.startswith("_")
                and not name.startswith("__")
                and target != mod
                and target in modules
            ):
                found.append(f"{where} imports the private {target}.{name}")
            a, b = _subpackage(mod), _subpackage(full)
            if a != b and b != "ariasim":
                edges.setdefault(a, set()).add(b)
    # cycles between sub-packages (e.g. response <-> export)
    for a, b in itertools.permutations(sorted(edges), 2):
        if a < b and b in _reach(edges, a) and a in _reach(edges, b):
            found.append(f"package cycle: {a} <-> {b}")
    return found


def _reach(edges: dict[str, set[str]], start: str) -> set[str]:
    seen, todo = set(), [start]
    while todo:
        for n in edges.get(todo.pop(), ()):
            if n not in seen:
                seen.add(n)
                todo.append(n)
    return seen


def project_modules() -> dict[str, tuple[str, bool]]:
    return {
        module_name(p): (p.read_text(encoding="utf-8"), p.name == "__init__.py")
        for p in sorted((SRC / "ariasim").rglob("*.py"))
    }


def test_floors_hold() -> None:
    found = violations(project_modules())
    assert not found, "import rules of DESIGN.md broken:\n" + "\n".join(found)


# each deliberately bad import that DESIGN.md forbids, as it stood before the apps floor
@pytest.mark.parametrize(
    ("module", "source", "rule"),
    [
        (
            "ariasim.surrogates.photon",
            "from ariasim.simulators.photons import tabulate_shells",
            "method package",
        ),
        (
            "ariasim.metrics.extra",
            "def f():\n    from ariasim.apps.collider import learn",
            "method package",
        ),
        ("ariasim.simulators.photons.extra", "from ariasim.surrogates import Formula", "simulator"),
        ("ariasim.simulators.collider.cli", "import typer", "typer"),
        ("ariasim.apps.collider.extra", "import typer", "typer"),
        (
            "ariasim.surrogates.extra",
            "from ariasim.io import make_provenance as _m\n"
            "from ariasim.utils import _private_helper",
            "private",
        ),
        ("ariasim.utils", "from ariasim.metrics import compare", "ground-floor"),
        (
            "ariasim.apps.collider.extra",
            "from ariasim.cli import main",
            "application imports the CLI",
        ),
    ],
)
def test_a_bad_import_is_caught(module: str, source: str, rule: str) -> None:
    modules = project_modules()
    modules[module] = (source, False)
    found = [v for v in violations(modules) if module in v]
    assert any(rule in v for v in found), found


def test_a_package_cycle_is_caught() -> None:
    modules = project_modules()
    modules["ariasim.export.card"] = ("from ariasim.metrics import compare", False)
    modules["ariasim.metrics.extra"] = ("from ariasim.export import tformula", False)
    assert any(
        "package cycle: ariasim.export <-> ariasim.metrics" in v for v in violations(modules)
    )


def test_relative_imports_resolve() -> None:
    assert imports_of("ariasim.apps.collider.learn", "from ..photons import demo") == [
        (1, "ariasim.apps.photons", "demo")
    ]
    assert imports_of("ariasim.apps.collider", "from .model import R", is_package=True) == [
        (1, "ariasim.apps.collider.model", "R")
    ]


def test_public_import_paths_keep_working() -> None:
    """The paths users may have imported before the apps floor still work."""
    import ariasim.io
    import ariasim.metrics
    from ariasim.surrogates import Formula, KANClassifier, KANRegressor, SymbolicRegressor

    assert callable(ariasim.io.read_table) and callable(ariasim.metrics.compare)
    assert Formula("x + 1", ["x"])({"x": 1.0}) == 2.0
    assert {c.__name__ for c in (KANRegressor, KANClassifier, SymbolicRegressor)} == {
        "KANRegressor",
        "KANClassifier",
        "SymbolicRegressor",
    }
    from ariasim.apps.collider import ResponseModel
    from ariasim.apps.photons import Pandel, PhotonSurrogate

    assert ResponseModel and Pandel and PhotonSurrogate


def test_no_lazy_export_is_shadowed_by_a_submodule() -> None:
    """A package that exports names lazily (a module ``__getattr__``) and has a submodule
    named like one of them: once anything imports that submodule, Python sets the package
    attribute to the module, and ``from package import name`` returns the module unless the
    package guards it (``ariasim.simulators.collider`` does; ``ariasim.discovery.calibrate``
    was shadowed until its submodule became ``calibration``)."""
    import importlib
    import pkgutil
    import types

    shadowed = []
    for init in sorted((SRC / "ariasim").rglob("__init__.py")):
        if "def __getattr__" not in init.read_text():
            continue
        name = ".".join(init.parent.relative_to(SRC).parts)
        pkg = importlib.import_module(name)
        subs = {m.name for m in pkgutil.iter_modules(pkg.__path__)}
        for export in sorted(set(getattr(pkg, "__all__", ())) & subs):
            importlib.import_module(f"{name}.{export}")
            if isinstance(getattr(pkg, export), types.ModuleType):
                shadowed.append(f"{name}.{export}")
    assert not shadowed, shadowed
    from ariasim.discovery import Observations, calibrate

    assert callable(calibrate) and not isinstance(calibrate, types.ModuleType), calibrate
    assert calibrate.__module__ == "ariasim.discovery.calibration" and Observations


def test_python_dash_m_runs_the_cli() -> None:
    import subprocess
    import sys

    r = subprocess.run(
        [sys.executable, "-m", "ariasim", "--version"],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert r.returncode == 0 and r.stdout.startswith("ariasim "), r.stderr


def test_every_public_class_has_an_example() -> None:
    """DESIGN.md: an ``Example:`` on each public class (run by ``--doctest-modules``)."""
    import importlib
    import inspect

    missing = []
    for mod in sorted(project_modules()):
        if mod.endswith("__main__"):
            continue
        m = importlib.import_module(mod)
        for name in getattr(m, "__all__", []):
            obj = getattr(m, name, None)
            if (
                inspect.isclass(obj)
                and obj.__module__ == mod
                and not issubclass(obj, BaseException)
                and "Example" not in (obj.__doc__ or "")
            ):
                missing.append(f"{mod}.{name}")
    assert not missing, missing
