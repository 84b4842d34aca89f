"""Imports flow one way: no circle among lrscout's modules, and no layer imports a higher one.

Read from the source with ``ast`` (nothing is imported): every ``import`` and ``from ...
import`` of an lrscout module counts, at module level or inside a function (a lazy import
is still a dependency), except those under ``if TYPE_CHECKING:`` (annotations only).
``from . import x`` counts as an import of the submodule ``x`` when one exists, else of
the package.
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

import pytest

SRC = Path(__file__).resolve().parents[2] / "src"
PACKAGE = SRC / "lrscout"

#: The layers, bottom to top. A module may import its own layer and the ones below, never a
#: higher one; a module not listed here fails the test (place every new module).
#:
#: ``report`` (plots, HTML, result files) sits *below* the results: it knows them only as
#: types (imports under ``TYPE_CHECKING``), so a result's ``.plot()`` and ``select`` /
#: ``train`` / ``finetune`` writing their files call down into it, and nothing calls back.
LAYERS: tuple[tuple[str, ...], ...] = (
    ("lrscout.errors", "lrscout._io", "lrscout._version", "lrscout.checks"),  # argument checks: errors only
    ("lrscout.curve", "lrscout.schedules", "lrscout.backends", "lrscout.protocol"),  # pure maths; job runners; the task protocol
    ("lrscout.report",),  # rendering and files, as functions of results it never imports
    ("lrscout.results", "lrscout.state", "lrscout.data", "lrscout.optim"),
    ("lrscout.models",),  # the catalogue, pretrained weights, parameter groups
    ("lrscout.task", "lrscout.custom"),  # the named task and the user's own (task_from)
    ("lrscout.engine",),  # the range test
    ("lrscout.training",),  # the loop, the guard, train(), diagnosis
    ("lrscout.selection",),  # trials, the successive-halving driver, select, compare
    ("lrscout.finetuning",),  # range tests per group, the 2-D selection on select's driver
    # the public API (``lrscout/__init__.py`` alone), the command line, framework callbacks
    ("lrscout", "lrscout.cli", "lrscout.integrations"),
)


def module_name(path: Path) -> str:
    parts = list(path.relative_to(SRC).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


MODULES = {module_name(p): p for p in sorted(PACKAGE.rglob("*.py"))}


def _is_type_checking(test: ast.expr) -> bool:
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING")


def _nodes(tree: ast.AST) -> Iterator[ast.AST]:
    """Every node, skipping the bodies of ``if TYPE_CHECKING:`` blocks."""
    for node in ast.iter_child_nodes(tree):
        if isinstance(node, ast.If) and _is_type_checking(node.test):
            for child in node.orelse:
                yield child
                yield from _nodes(child)
            continue
        yield node
        yield from _nodes(node)


def _resolve(module: str, is_package: bool, node: ast.ImportFrom) -> str:
    if node.level == 0:
        return node.module or ""
    base = module.split(".") if is_package else module.split(".")[:-1]
    base = base[: len(base) - (node.level - 1)]
    return ".".join(base + ([node.module] if node.module else []))


def imports_of(module: str) -> set[str]:
    """The lrscout modules ``module`` imports (each import's deepest existing module)."""
    path = MODULES[module]
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    found: set[str] = set()
    for node in _nodes(tree):
        if isinstance(node, ast.Import):
            targets = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            target = _resolve(module, path.name == "__init__.py", node)
            targets = [f"{target}.{a.name}" if f"{target}.{a.name}" in MODULES else target for a in node.names]
        else:
            continue
        for t in targets:
            while t and t not in MODULES:  # `import lrscout.x.y` where y is a name, not a module
                t = t.rpartition(".")[0]
            if t.startswith("lrscout") and t != module:
                found.add(t)
    return found


GRAPH = {m: imports_of(m) for m in MODULES}


def layer_of(module: str) -> int:
    best = -1, -1  # (length of the matching prefix, layer)
    for i, layer in enumerate(LAYERS):
        for prefix in layer:
            inside = module == prefix or (prefix != "lrscout" and module.startswith(prefix + "."))
            if inside and len(prefix) > best[0]:
                best = len(prefix), i
    if best[1] < 0:
        raise AssertionError(f"{module} is in no layer of LAYERS: place it")
    return best[1]


def test_the_graph_is_read() -> None:
    assert "lrscout.selection.driver" in GRAPH["lrscout.selection.selection"]
    assert "lrscout.models.pretrained" in GRAPH["lrscout.models.groups"]


@pytest.mark.parametrize("module", sorted(MODULES))
def test_no_import_climbs_to_a_higher_layer(module: str) -> None:
    here = layer_of(module)
    up = sorted(t for t in GRAPH[module] if layer_of(t) > here)
    assert not up, f"{module} (layer {here}) imports higher layers: {up}"


def _cycle() -> list[str] | None:
    """One import circle, as a list of modules, or None (depth-first search)."""
    state: dict[str, int] = {}  # 1: on the stack, 2: done
    stack: list[str] = []

    def visit(m: str) -> list[str] | None:
        state[m] = 1
        stack.append(m)
        for t in sorted(GRAPH[m]):
            if t in stack and state.get(t) == 1:
                return stack[stack.index(t):] + [t]
            if t not in state:
                found = visit(t)
                if found:
                    return found
        stack.pop()
        state[m] = 2
        return None

    for m in sorted(GRAPH):
        if m not in state:
            found = visit(m)
            if found:
                return found
    return None


def test_no_import_circle() -> None:
    cycle = _cycle()
    assert cycle is None, "import circle: " + " -> ".join(cycle or [])
