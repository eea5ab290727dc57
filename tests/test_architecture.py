"""The shape of the package, checked from the source (ast, nothing is imported).

* The layers (README, "Architecture") import only layers below them: kernels ->
  nn -> models -> ... -> batch -> cli, never back. So there is no import cycle between
  the top-level modules and packages of `forecast`.
* No module uses another unit's private names: ``from forecast.x import _name``, a
  private module (``forecast.data._read``) or ``module._name`` from outside the package
  that defines it. The modules of one package (``forecast.batch.*``) are one unit.
* No module over 600 lines outside ``forecast/kernels/`` (kernels keep their helpers
  in one file for Numba's cache).
* `kernels` imports numpy and numba only; `models` imports neither plotly nor typer;
  nothing but the CLI imports typer, click or rich; nothing imports ``typer._*``.
"""

from __future__ import annotations

import ast
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1] / "forecast"

# lowest first: a unit may import only the units before it (and itself)
LAYERS = [
    "forecast.errors",
    "forecast",  # the package itself: __version__ and the errors
    "forecast.files",
    "forecast.data",
    "forecast.datasets",
    "forecast.transforms",
    "forecast.windows",
    "forecast.metrics",
    "forecast.kernels",
    "forecast.nn",
    "forecast.precompile",
    "forecast.ltsf",
    "forecast.models",
    "forecast.backtest",
    "forecast.diagnostics",
    "forecast.io",
    "forecast.report",
    "forecast.workflows",
    "forecast.batch",
    "forecast.cli",
    "forecast.__main__",
]
MAX_LINES = 600


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT.parent).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts = parts[:-1]
    return ".".join(parts)


MODULES = {_module_name(p): p for p in sorted(ROOT.rglob("*.py"))}


def _unit(module: str) -> str:
    """The layer a module belongs to: ``forecast.batch.lock`` -> ``forecast.batch``."""
    return ".".join(module.split(".")[:2])


def _imports(module: str, path: Path):
    """(imported module, imported name or None, line) for every import in the file,
    function-local ones included; ``from forecast import io`` is the module
    ``forecast.io``."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    package = module if path.name == "__init__.py" else module.rsplit(".", 1)[0]
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield alias.name, None, node.lineno
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")[: len(package.split(".")) - node.level + 1]
                source = ".".join(base + ([node.module] if node.module else []))
            else:
                source = node.module or ""
            for alias in node.names:
                sub = f"{source}.{alias.name}"
                if sub in MODULES:
                    yield sub, None, node.lineno
                else:
                    yield source, alias.name, node.lineno


def _private(name: str) -> bool:
    return name.startswith("_") and not name.startswith("__")


def _module_aliases(path: Path) -> dict[str, str]:
    """Local names bound to forecast modules (``from forecast.batch import engine``)."""
    out = {}
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.ImportFrom) and node.module and not node.level:
            for alias in node.names:
                if f"{node.module}.{alias.name}" in MODULES:
                    out[alias.asname or alias.name] = f"{node.module}.{alias.name}"
        elif isinstance(node, ast.Import):
            for alias in node.names:
                if alias.asname and alias.name in MODULES:
                    out[alias.asname] = alias.name
    return out


def test_every_module_has_a_layer():
    missing = sorted({_unit(m) for m in MODULES} - set(LAYERS))
    assert not missing, f"add {missing} to LAYERS (and to the README's architecture)"


def test_layers_import_only_layers_below_them():
    rank = {u: i for i, u in enumerate(LAYERS)}
    bad = []
    for module, path in MODULES.items():
        me = _unit(module)
        for target, _name, line in _imports(module, path):
            if not (target == "forecast" or target.startswith("forecast.")):
                continue
            other = _unit(target)
            if other != me and rank[other] > rank[me]:
                bad.append(f"{path.relative_to(ROOT.parent)}:{line}: {me} imports {target}")
    assert not bad, "imports against the layer order:\n" + "\n".join(bad)


def test_no_import_cycle_between_units():
    graph: dict[str, set[str]] = {}
    for module, path in MODULES.items():
        for target, _name, _line in _imports(module, path):
            if target == "forecast" or target.startswith("forecast."):
                if _unit(target) != _unit(module):
                    graph.setdefault(_unit(module), set()).add(_unit(target))
    state: dict[str, int] = {}

    def visit(node, trail):
        state[node] = 1
        for nxt in sorted(graph.get(node, ())):
            if state.get(nxt) == 1:
                pytest.fail("import cycle: " + " -> ".join(trail + [node, nxt]))
            if nxt not in state:
                visit(nxt, trail + [node])
        state[node] = 2

    for unit in sorted(graph):
        if unit not in state:
            visit(unit, [])


def test_no_private_name_crosses_a_package():
    bad = []
    for module, path in MODULES.items():
        me = _unit(module)
        for target, name, line in _imports(module, path):
            if not target.startswith("forecast.") or _unit(target) == me:
                continue
            where = f"{path.relative_to(ROOT.parent)}:{line}"
            if any(_private(part) for part in target.split(".")[2:]):
                bad.append(f"{where}: private module {target}")
            if name is not None and _private(name):
                bad.append(f"{where}: private name {target}.{name}")
        aliases = {k: v for k, v in _module_aliases(path).items() if _unit(v) != me}
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if (isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name)
                    and node.value.id in aliases and _private(node.attr)):
                bad.append(f"{path.relative_to(ROOT.parent)}:{node.lineno}: "
                           f"{aliases[node.value.id]}.{node.attr}")
    assert not bad, "private names used outside their package:\n" + "\n".join(bad)


def test_no_module_over_600_lines_outside_the_kernels():
    long = {str(p.relative_to(ROOT.parent)): n for p in MODULES.values()
            if "kernels" not in p.parts
            and (n := len(p.read_text(encoding="utf-8").splitlines())) > MAX_LINES}
    assert not long, f"modules over {MAX_LINES} lines: {long}"


def test_third_party_imports_stay_in_their_layer():
    bad = []
    for module, path in MODULES.items():
        unit = _unit(module)
        for target, _name, line in _imports(module, path):
            top = target.split(".")[0]
            where = f"{path.relative_to(ROOT.parent)}:{line}: {target}"
            if target.startswith(("typer._", "click")):
                bad.append(f"{where} (private typer internals / click)")
            if unit == "forecast.kernels" and top not in ("numpy", "numba", "llvmlite",
                                                          "forecast", "__future__") \
                    and top not in sys.stdlib_module_names:
                bad.append(f"{where} (kernels import numpy and numba only)")
            if unit == "forecast.models" and top in ("plotly", "typer", "rich"):
                bad.append(f"{where} (models never import plotly or typer)")
            if unit not in ("forecast.cli", "forecast.__main__") and top in ("typer", "rich"):
                bad.append(f"{where} (only the CLI talks to the terminal)")
    assert not bad, "\n".join(bad)


def test_no_benchmark_script_is_imported_by_the_libraries():
    """A script's folder comes first on `sys.path`, so a file in `benchmarks/` named like
    a module that Numba, NumPy or pandas imports (optionally, as Numba does `coverage`)
    is imported in its place whenever a benchmark imports them. `benchmarks/coverage.py`
    did that and broke `benchmarks/kernels.py`. With `benchmarks/` first on the path,
    importing the libraries and `forecast` must load none of its scripts."""
    import subprocess

    repo = ROOT.parent
    code = ("import sys; sys.path.insert(0, 'benchmarks'); import numba, numpy, pandas, scipy, "
            "forecast, forecast.models, forecast.workflows; "
            "print([m for m, v in list(sys.modules.items()) "
            "if 'benchmarks' in str(getattr(v, '__file__', None) or '')])")
    r = subprocess.run([sys.executable, "-c", code], cwd=repo, capture_output=True, text=True,
                       timeout=120)
    assert r.returncode == 0, r.stderr[-2000:]
    assert r.stdout.strip() == "[]", r.stdout
