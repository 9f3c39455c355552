"""Which room of `dgm/` may import which (docs/architecture.md), read from the
code itself: every `import` statement anywhere in a module counts, also those
inside functions (a lazy import is still a dependency), except imports under
`if TYPE_CHECKING:`, which never run.

The last test plants forbidden imports in a copy of the package and checks
that each rule catches its own, so a checker that silently found nothing
would fail here.
"""

from __future__ import annotations

import ast
import shutil
from pathlib import Path

import sys

import networkx as nx

import dgm

PACKAGE_DIR = Path(dgm.__file__).resolve().parent

# (who, what it may not import, why). A module is "who" when its name starts
# with the prefix; an import is forbidden when the imported name starts with
# one of the listed prefixes.
FORBIDDEN = [
    ("dgm.sandbox", ("dgm.bench", "dgm.evolution", "dgm.runs", "dgm.cli"),
     "sandboxes know nothing of benchmarks or evolution"),
    ("dgm.bench", ("dgm.evolution", "dgm.runs", "dgm.cli"), "benchmarks know nothing of evolution"),
    ("dgm.evolution", ("dgm.runs", "dgm.cli"), "the loop is built by a run, not the other way round"),
    ("dgm.", ("dgm.cli",), "the CLI is the top floor: nothing below imports it"),
]
# The CLI's own modules, `python -m dgm`, and a benchmark family's CLI face
# (its options and commands, e.g. dgm/bench/swebench/cli.py) build on the CLI.
CLI_SIDE = ("dgm.cli", "dgm.__main__")
# Selection is pure: archive statistics in, agent ids out.
SELECTION = "dgm.evolution.selection"
SELECTION_MAY_IMPORT = ("dgm.errors", "numpy")
STANDARD_LIBRARY = frozenset(sys.stdlib_module_names)
# Only the archive talks SQL.
SQL_LIBRARIES = ("sqlalchemy", "alembic", "sqlite3")
ARCHIVE = "dgm.archive"


def module_names(root: Path) -> dict[str, Path]:
    """Dotted module name -> file, for every .py under the package at `root`."""
    out = {}
    for path in sorted(root.rglob("*.py")):
        parts = list(path.relative_to(root.parent).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts.pop()
        if "migrations" in parts or "seed_agent" in parts:
            continue  # Alembic's scripts; the seed agent is agent code, run only in sandboxes
        out[".".join(parts)] = path
    return out


def _runtime_nodes(tree: ast.AST):
    """Every node, leaving out the bodies of `if TYPE_CHECKING:`."""
    stack = [tree]
    while stack:
        node = stack.pop()
        if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
            stack.extend(node.orelse)
            continue
        yield node
        stack.extend(ast.iter_child_nodes(node))


def imports_of(name: str, path: Path, known: set[str]) -> list[tuple[str, int]]:
    """(imported name, line) for each import in the module. `from pkg import mod`
    names the module `pkg.mod` when that is a module."""
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found = []
    for node in _runtime_nodes(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            found += [(alias.name, node.lineno) for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")[:len(package.split(".")) - node.level + 1]
                base = ".".join(anchor + ([base] if base else []))
            for alias in node.names:
                sub = f"{base}.{alias.name}"
                found.append((sub if sub in known else base, node.lineno))
    return found


def import_graph(root: Path) -> tuple[nx.DiGraph, list[tuple[str, str, int]]]:
    """The graph of imports among the package's modules, and every import
    (module, imported name, line), outside names included."""
    modules = module_names(root)
    known = set(modules)
    graph = nx.DiGraph()
    graph.add_nodes_from(known)
    every = []
    for name, path in modules.items():
        for imported, line in imports_of(name, path, known):
            every.append((name, imported, line))
            target = imported
            while target and target not in known:  # `import dgm.x.y` of a name inside a module
                target = target.rpartition(".")[0]
            if target and target != name and target != root.name:
                graph.add_edge(name, target)
    return graph, every


def _starts(name: str, prefix: str) -> bool:
    return name == prefix or name.startswith(prefix if prefix.endswith(".") else prefix + ".")


def violations(root: Path) -> list[str]:
    """Every broken rule, one line each."""
    graph, every = import_graph(root)
    found = []
    for who, imported, line in sorted(set(every)):
        where = f"{who}:{line} imports {imported}"
        for prefix, banned, why in FORBIDDEN:
            on_cli_side = any(_starts(who, c) for c in CLI_SIDE) or who.endswith(".cli")
            if _starts(who, prefix) and not on_cli_side and any(_starts(imported, b) for b in banned):
                found.append(f"{where} ({why})")
        if who == SELECTION and imported.split(".")[0] not in STANDARD_LIBRARY \
                and not any(_starts(imported, ok) for ok in SELECTION_MAY_IMPORT):
            found.append(f"{where} (selection is pure: errors and numpy only)")
        if imported.split(".")[0] in SQL_LIBRARIES and not _starts(who, ARCHIVE):
            found.append(f"{where} (only dgm/archive/ talks SQL)")
    for cycle in sorted(sorted(c) for c in nx.simple_cycles(graph)):
        found.append(f"import circle: {' -> '.join(cycle)}")
    return found


def test_the_package_keeps_its_import_rules():
    assert violations(PACKAGE_DIR) == []


def test_each_rule_catches_a_planted_import(tmp_path):
    copy = tmp_path / "dgm"
    shutil.copytree(PACKAGE_DIR, copy, ignore=shutil.ignore_patterns("__pycache__", "static", "scripted_models"))
    assert violations(copy) == []
    plants = {
        "sandbox/docker.py": "from dgm.bench import registry\n",
        "evolution/selection.py": "import json\nfrom dgm.archive import store\n",
        "lineage/graph.py": "import sqlalchemy\n",
        "errors.py": "def _later():\n    from dgm.ranking import best_key\n",
        "ranking.py": "from dgm import errors\n",
    }
    for relative, line in plants.items():
        path = copy / relative
        path.write_text(path.read_text() + "\n" + line)
    found = violations(copy)
    assert any(v.startswith("dgm.sandbox.docker:") and "imports dgm.bench.registry" in v for v in found), found
    assert any(v.startswith("dgm.evolution.selection:") and "imports dgm.archive.store" in v for v in found), found
    assert not any("selection" in v and "imports json" in v for v in found), found  # the standard library is fine
    assert any(v.startswith("dgm.lineage.graph:") and "imports sqlalchemy" in v for v in found), found
    assert any(v.startswith("import circle:") and "dgm.errors" in v and "dgm.ranking" in v for v in found), found
    # An import only for type checkers is no dependency.
    (copy / "ranking.py").write_text((copy / "ranking.py").read_text().replace(
        "from dgm import errors\n", "from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    from dgm import errors\n"))
    assert not any(v.startswith("import circle:") and "dgm.ranking" in v for v in violations(copy))
