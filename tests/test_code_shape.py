"""The shape of the code, checked on every run: no import cycles between dnflow's own modules,
each file of a run's folder named in one place only (pipeline.contract), and no template comment
that Django would show as text."""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

from pipeline import contract

PROJECT_DIR = Path(__file__).resolve().parent.parent
PACKAGES = ("searches", "pipeline", "dnflow_site")


def product_modules() -> dict[str, Path]:
    modules = {}
    for package in PACKAGES:
        for path in sorted((PROJECT_DIR / package).rglob("*.py")):
            parts = list(path.relative_to(PROJECT_DIR).with_suffix("").parts)
            if parts[-1] == "__init__":
                parts = parts[:-1]
            modules[".".join(parts)] = path
    return modules


def imports_of(name: str, path: Path, modules: dict[str, Path]) -> set[str]:
    """The product modules `name` imports, at the top or inside a function alike."""
    is_package = path.name == "__init__.py"
    found = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            targets = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = name.split(".") if is_package else name.split(".")[:-1]
                anchor = anchor[: len(anchor) - (node.level - 1)]
                base = ".".join([*anchor, base] if base else anchor)
            # `from package import module` imports that module; `from module import thing`, the module.
            targets = [f"{base}.{a.name}" if f"{base}.{a.name}" in modules else base for a in node.names]
        else:
            continue
        for target in targets:
            # `import a.b.c` needs a.b.c; the packages above it are Python's business, not an edge.
            while target and target not in modules:
                target = target.rpartition(".")[0]
            if target and target != name:
                found.add(target)
    return found


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components of more than one module (Tarjan), each as a list of names."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for other in sorted(graph[node]):
            if other not in index:
                visit(other)
                low[node] = min(low[node], low[other])
            elif other in on_stack:
                low[node] = min(low[node], index[other])
        if low[node] == index[node]:
            component = []
            while True:
                member = stack.pop()
                on_stack.discard(member)
                component.append(member)
                if member == node:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for node in sorted(graph):
        if node not in index:
            visit(node)
    return found


def test_no_import_cycles_between_dnflow_modules():
    modules = product_modules()
    graph = {name: imports_of(name, path, modules) for name, path in modules.items()}
    assert len(graph) > 40 and sum(map(len, graph.values())) > 100, "the checker found too little to check"
    found = cycles(graph)
    described = [
        " <-> ".join(cycle) + ": " + "; ".join(f"{a} imports {sorted(graph[a] & set(cycle))}" for a in cycle)
        for cycle in found
    ]
    assert found == [], "import cycles:\n" + "\n".join(described)


def test_the_cycle_checker_finds_a_cycle_hidden_in_a_function():
    """The check above could pass by seeing nothing: here it must see a function-level import."""
    graph = {"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}
    assert cycles(graph) == [["a", "b", "c"]]
    source = "def f():\n    from .models import Search\n"
    modules = {"searches.models": Path("models.py"), "searches.views": Path("views.py")}
    path = PROJECT_DIR / "tests" / "_cycle_probe.py"
    path.write_text(source)
    try:
        assert imports_of("searches.views", path, modules) == {"searches.models"}
    finally:
        path.unlink()


def string_constants(path: Path) -> Iterator[tuple[int, str]]:
    """The string literals of a module, its docstrings left out (prose may name a file)."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    docstrings = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Module | ast.ClassDef | ast.FunctionDef | ast.AsyncFunctionDef):
            body = node.body
            if body and isinstance(body[0], ast.Expr) and isinstance(body[0].value, ast.Constant):
                docstrings.add(id(body[0].value))
    for node in ast.walk(tree):
        if isinstance(node, ast.Constant) and isinstance(node.value, str) and id(node) not in docstrings:
            yield node.lineno, node.value


def test_each_output_file_name_is_spelled_in_the_folder_contract_only():
    names = [file.name for file in contract.FILES]
    assert len(names) > 20
    own = Path(contract.__file__).resolve()
    spelled = []
    for module, path in product_modules().items():
        if path.resolve() == own or "/migrations/" in str(path):
            continue
        for line, text in string_constants(path):
            spelled += [f"{module}:{line}: {name!r} in {text!r}" for name in names if name in text]
    assert spelled == [], "output file names spelled outside pipeline/contract.py:\n" + "\n".join(spelled)


def test_no_template_comment_spans_lines():
    """Django's {# ... #} ends at its line: one over two lines is shown on the page as text (the
    check found one on every page). Longer comments are {% comment %} blocks."""
    open_comments = [
        f"{path.relative_to(PROJECT_DIR)}:{number}"
        for path in sorted((PROJECT_DIR / "templates").rglob("*.html"))
        for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1)
        if line.count("{#") > line.count("#}")
    ]
    assert open_comments == []
