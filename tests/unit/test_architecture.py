"""The tree shows the architecture, and the tests keep it that way.

- Only `pipeline/driver/` imports Ray; the actor side, planning, the run dir and outputs
  are plain Python (a fresh interpreter that imports them has no `ray` module loaded).
- Packages depend one way (LAYERS, lowest first): no import from a higher layer, and no
  import cycle between modules, counting imports inside functions too.
"""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

from tests.conftest import REPO

PIPELINE = REPO / "pipeline"
# Each package or top-level module, by layer: a module may import only from its own
# layer's package or from lower layers.
LAYERS = (
    ("errors", "config", "arrow_io"),
    ("media",),
    ("models",),
    ("schema",),
    ("outputs", "score"),
    ("plan",),
    ("rundir",),
    ("actor", "report", "export"),
    ("driver",),
    ("cli", "__main__"),
)
LAYER_OF = {name: level for level, names in enumerate(LAYERS) for name in names}
RAY_PACKAGES = ("driver",)


def modules() -> dict[str, Path]:
    found = {}
    for path in PIPELINE.rglob("*.py"):
        parts = path.relative_to(REPO).with_suffix("").parts
        found[".".join(parts[:-1] if parts[-1] == "__init__" else parts)] = path
    return found


def imported_names(path: Path, module: str) -> set[str]:
    """Every module name an import statement in `path` names (top level or in a function)."""
    package = module if path.name == "__init__.py" else module.rsplit(".", 1)[0]
    names = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.rsplit(".", node.level - 1)[0] if node.level > 1 else package
                base = f"{anchor}.{base}" if base else anchor
            names.add(base)
            names.update(f"{base}.{alias.name}" for alias in node.names)
    return names


def edges() -> dict[str, set[str]]:
    found = modules()
    return {
        module: {name for name in imported_names(path, module) if name in found} - {module}
        for module, path in found.items()
    }


def unit(module: str) -> str:
    """The package (or top-level module) a module belongs to: pipeline.plan.keys -> plan."""
    return module.split(".")[1] if "." in module else module


def test_every_package_has_a_layer():
    missing = {unit(module) for module in modules() if module != "pipeline"} - set(LAYER_OF)
    assert not missing, f"give these a layer in LAYERS: {sorted(missing)}"


def test_packages_import_only_their_own_layer_or_lower():
    upward = [
        f"{module} imports {target}"
        for module, targets in edges().items()
        if module != "pipeline"
        for target in targets
        if target != "pipeline" and LAYER_OF[unit(target)] > LAYER_OF[unit(module)]
    ]
    assert not upward, "\n".join(upward)


def test_no_import_cycles():
    graph = edges()
    cycles = [component for component in strongly_connected(graph) if len(component) > 1]
    assert not cycles, f"import cycles: {cycles}"


def test_only_the_driver_imports_ray():
    offenders = [
        module
        for module, path in modules().items()
        if unit(module) not in RAY_PACKAGES
        and any(n == "ray" or n.startswith("ray.") for n in imported_names(path, module))
    ]
    assert not offenders, f"modules outside {RAY_PACKAGES} import ray: {offenders}"
    # Transitively too: the actor side, planning, the run dir and outputs load no Ray.
    plain = sorted(m for m in modules() if unit(m) not in ("driver", "cli", "__main__"))
    code = "import sys\n" + "".join(f"import {m}\n" for m in plain)
    code += "print(sorted(m for m in sys.modules if m == 'ray' or m.startswith('ray.')))"
    done = subprocess.run(
        [sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, check=True
    )
    assert done.stdout.strip() == "[]", done.stdout[:400]


def test_the_cycle_finder_finds_a_cycle():
    graph = {"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}
    assert [sorted(c) for c in strongly_connected(graph) if len(c) > 1] == [["a", "b", "c"]]


def strongly_connected(graph: dict[str, set[str]]) -> list[set[str]]:
    """Tarjan's algorithm (iterative)."""
    index, low, on_stack, stack, components = {}, {}, set(), [], []
    for root in graph:
        if root in index:
            continue
        work = [(root, iter(sorted(graph.get(root, ()))))]
        index[root] = low[root] = len(index)
        stack.append(root)
        on_stack.add(root)
        while work:
            node, children = work[-1]
            child = next(children, None)
            if child is not None:
                if child not in index:
                    index[child] = low[child] = len(index)
                    stack.append(child)
                    on_stack.add(child)
                    work.append((child, iter(sorted(graph.get(child, ())))))
                elif child in on_stack:
                    low[node] = min(low[node], index[child])
                continue
            work.pop()
            if work:
                low[work[-1][0]] = min(low[work[-1][0]], low[node])
            if low[node] == index[node]:
                component = set()
                while True:
                    member = stack.pop()
                    on_stack.discard(member)
                    component.add(member)
                    if member == node:
                        break
                components.append(component)
    return components
