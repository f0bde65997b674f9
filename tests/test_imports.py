"""The import layering of ``src/movie_rec``: no module imports itself back through others,
and the plain modules (model code, the second stage, tuning) never import Kedro."""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

PACKAGE_ROOT = Path(__file__).resolve().parents[1] / "src"
PLAIN_PACKAGES = ("movie_rec/models", "movie_rec/second_stage", "movie_rec/tuning")  # no Kedro


def _module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE_ROOT).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _modules() -> dict[str, Path]:
    return {_module_name(path): path for path in sorted(PACKAGE_ROOT.rglob("movie_rec/**/*.py"))}


def _imports(tree: ast.Module) -> list[ast.Import | ast.ImportFrom]:
    """Every import statement, wherever it sits (one under ``if TYPE_CHECKING:`` is a
    dependency too: it only hides the cycle from the interpreter)."""
    return [node for node in ast.walk(tree) if isinstance(node, (ast.Import, ast.ImportFrom))]


def _imported(node: ast.Import | ast.ImportFrom, module: str, modules: dict[str, Path]) -> set[str]:
    """The project's modules an import statement loads (a name that is a submodule counts
    as that submodule)."""
    if isinstance(node, ast.Import):
        return {alias.name for alias in node.names if alias.name in modules}
    base = node.module or ""
    if node.level:  # relative: from the module's package, up level - 1 packages
        parts = module.split(".")
        anchor = parts if modules[module].name == "__init__.py" else parts[:-1]
        anchor = anchor[: len(anchor) - (node.level - 1)]
        base = ".".join([*anchor, base] if base else anchor)
    targets = {f"{base}.{alias.name}" for alias in node.names} & set(modules)
    return targets or ({base} & set(modules))


def import_graph() -> dict[str, set[str]]:
    """Module → the project modules it imports."""
    modules = _modules()
    graph: dict[str, set[str]] = {}
    for name, path in modules.items():
        tree = ast.parse(path.read_text(encoding="utf-8"))
        graph[name] = set().union(*(_imported(n, name, modules) for n in _imports(tree)))
        graph[name].discard(name)
    return graph


def find_cycle(graph: dict[str, set[str]]) -> list[str] | None:
    """One import cycle (its modules, the first repeated at the end), or None."""
    state: dict[str, int] = {}  # 1: on the current path, 2: done
    path: list[str] = []

    def visit(module: str) -> list[str] | None:
        state[module] = 1
        path.append(module)
        for target in sorted(graph.get(module, ())):
            if state.get(target) == 1:
                return [*path[path.index(target) :], target]
            if target not in state and (cycle := visit(target)):
                return cycle
        path.pop()
        state[module] = 2
        return None

    for module in sorted(graph):
        if module not in state and (cycle := visit(module)):
            return cycle
    return None


def test_find_cycle_finds_a_cycle_and_only_a_cycle():
    assert find_cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == ["a", "b", "c", "a"]
    assert find_cycle({"a": {"b", "c"}, "b": {"c"}, "c": set()}) is None


def test_the_project_graph_sees_its_imports():
    graph = import_graph()
    assert "movie_rec.models.protocol" in graph["movie_rec.registry"]
    assert "movie_rec.evaluation" in graph["movie_rec.tuning.studies"]
    pipeline = "movie_rec.pipelines.tabular_rec.pipeline"  # a relative import
    assert "movie_rec.pipelines.tabular_rec.nodes" in graph[pipeline]


def test_no_module_of_the_project_imports_itself_back():
    cycle = find_cycle(import_graph())
    assert cycle is None, "import cycle: " + " -> ".join(cycle or [])


@pytest.mark.parametrize("package", PLAIN_PACKAGES)
def test_plain_packages_never_import_kedro(package):
    for path in sorted((PACKAGE_ROOT / package).rglob("*.py")):
        tree = ast.parse(path.read_text(encoding="utf-8"))
        for node in _imports(tree):
            names = [a.name for a in node.names] if isinstance(node, ast.Import) else [node.module]
            assert not any((name or "").startswith("kedro") for name in names), path


def _module_map() -> str:
    """The module map of docs/architecture.md: the code block that starts ``src/movie_rec/``."""
    text = (PACKAGE_ROOT.parent / "docs" / "architecture.md").read_text(encoding="utf-8")
    start = text.index("```\nsrc/movie_rec/\n")
    return text[start : text.index("```", start + 3)]


def test_the_architecture_module_map_names_every_module_and_only_modules():
    words = set(re.findall(r"[\w<>]+(?:\.py|/)", _module_map()))
    package = PACKAGE_ROOT / "movie_rec"
    for path in sorted(package.rglob("*.py")):
        folders = {f"{part}/" for part in path.relative_to(package).parent.parts}
        listed = path.name in words or path.name == "__init__.py" or folders & words
        assert listed, f"docs/architecture.md's module map does not name {path}"
    names = {path.name for path in package.rglob("*.py")}
    assert {word for word in words if word.endswith(".py")} <= names
