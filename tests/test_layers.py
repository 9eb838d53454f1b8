"""The package's layering, read from the source with ``ast``: the runtime is a leaf (it
reads and runs model folders, and imports nothing that trains, evaluates, exports or
writes cards), and no classicfer module imports itself back through others.

Every ``import`` statement counts, at module level or inside a function, with
relative imports resolved; ``from package import name`` points at the submodule
``package.name`` when there is one, else at the package.
"""

from __future__ import annotations

import ast
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[1] / "classicfer"

#: What the runtime must not reach, directly or through any other classicfer module.
RUNTIME_FORBIDDEN = ("classicfer.models", "classicfer.pipeline", "classicfer.cnn_head",
                     "classicfer.evaluation", "classicfer.export", "classicfer.cards",
                     "classicfer.distributed", "classicfer.serve", "classicfer.commands",
                     "classicfer.cli")
#: Training and export libraries the runtime's own modules must not import.
RUNTIME_FORBIDDEN_LIBRARIES = ("sklearn", "torch", "joblib", "skl2onnx", "onnxmltools",
                               "xgboost")

#: The layers above the CNN head (network, training, estimator): it hands its results up as
#: data and never imports them, directly or through any other classicfer module.
CNN_HEAD_FORBIDDEN = ("classicfer.export", "classicfer.evaluation", "classicfer.cards",
                      "classicfer.distributed", "classicfer.serve", "classicfer.commands",
                      "classicfer.cli")

#: Import cycles that exist and are being removed elsewhere: each entry is a set of modules
#: allowed to form cycles among themselves (a cycle is accepted only if all its modules are
#: in one entry). Delete an entry as soon as its cycle is gone. Currently none.
ALLOWED_CYCLES: list[frozenset[str]] = []


def module_names(root: Path) -> dict[str, Path]:
    """``{dotted name: file}`` of every module under the package folder ``root``."""
    out = {}
    for path in sorted(root.rglob("*.py")):
        parts = list(path.relative_to(root.parent).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts = parts[:-1]
        out[".".join(parts)] = path
    return out


def _nearest(name: str, modules) -> str | None:
    while name not in modules and "." in name:
        name = name.rsplit(".", 1)[0]
    return name if name in modules else None


def imports_of(name: str, path: Path, modules) -> tuple[set[str], set[str]]:
    """``(package modules, other top-level modules)`` imported anywhere in one module."""
    top = name.split(".")[0]
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    inside, outside = set(), set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            targets = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")[:len(package.split(".")) - (node.level - 1)]
                base = ".".join(base + ([node.module] if node.module else []))
            else:
                base = node.module or ""
            targets = [f"{base}.{a.name}" if f"{base}.{a.name}" in modules else base
                       for a in node.names]
        else:
            continue
        for t in targets:
            if t.split(".")[0] != top:
                outside.add(t.split(".")[0])
            elif (m := _nearest(t, modules)) is not None and m != name:
                inside.add(m)
    return inside, outside


def import_graph(root: Path | None = None) -> tuple[dict[str, set[str]], dict[str, set[str]]]:
    """``(graph between package modules, libraries imported by each module)`` of the package
    folder ``root`` (default: classicfer).
    """
    modules = module_names(PACKAGE if root is None else root)
    graph, libraries = {}, {}
    for name, path in modules.items():
        graph[name], libraries[name] = imports_of(name, path, modules)
    return graph, libraries


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected components with more than one module (Tarjan, iterative)."""
    index, low, on_stack, stack, found = {}, {}, set(), [], []
    counter = 0
    for start in sorted(graph):
        if start in index:
            continue
        work = [(start, iter(sorted(graph[start])))]
        index[start] = low[start] = counter
        counter += 1
        stack.append(start)
        on_stack.add(start)
        while work:
            node, children = work[-1]
            child = next(children, None)
            if child is not None:
                if child not in index:
                    index[child] = low[child] = counter
                    counter += 1
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
                component = []
                while True:
                    m = stack.pop()
                    on_stack.discard(m)
                    component.append(m)
                    if m == node:
                        break
                if len(component) > 1:
                    found.append(sorted(component))
    return found


def _reachable(graph, starts) -> set[str]:
    seen, todo = set(), list(starts)
    while todo:
        m = todo.pop()
        if m not in seen:
            seen.add(m)
            todo.extend(graph.get(m, ()))
    return seen


def _under(name: str, packages) -> bool:
    return any(name == p or name.startswith(p + ".") for p in packages)


def test_runtime_imports_nothing_that_trains_exports_or_evaluates():
    graph, libraries = import_graph()
    runtime = [m for m in graph if _under(m, ("classicfer.runtime",))]
    assert len(runtime) >= 5  # the walk found the runtime's modules
    direct = {m: sorted(t for t in graph[m] if _under(t, RUNTIME_FORBIDDEN)) for m in runtime}
    assert not any(direct.values()), {m: t for m, t in direct.items() if t}
    through = sorted(m for m in _reachable(graph, runtime) if _under(m, RUNTIME_FORBIDDEN))
    assert not through, f"the runtime reaches {through} through other classicfer modules"
    libs = {m: sorted(libraries[m] & set(RUNTIME_FORBIDDEN_LIBRARIES)) for m in runtime}
    assert not any(libs.values()), {m: v for m, v in libs.items() if v}


def test_cnn_head_imports_nothing_above_it():
    graph, _ = import_graph()
    head = [m for m in graph if _under(m, ("classicfer.cnn_head",))]
    assert "classicfer.cnn_head.train" in head  # the walk found the head's modules
    direct = {m: sorted(t for t in graph[m] if _under(t, CNN_HEAD_FORBIDDEN)) for m in head}
    assert not any(direct.values()), {m: t for m, t in direct.items() if t}
    through = sorted(m for m in _reachable(graph, head) if _under(m, CNN_HEAD_FORBIDDEN))
    assert not through, f"the CNN head reaches {through} through other classicfer modules"


def test_no_import_cycle_between_classicfer_modules():
    graph, _ = import_graph()
    found = cycles(graph)
    unexpected = [c for c in found if not any(set(c) <= allowed for allowed in ALLOWED_CYCLES)]
    assert not unexpected, "import cycles: " + "; ".join(" <-> ".join(c) for c in unexpected)


def test_the_walk_sees_function_level_and_relative_imports(tmp_path):
    pkg = tmp_path / "demo"
    (pkg / "sub").mkdir(parents=True)
    (pkg / "__init__.py").write_text("from .sub import b\n")
    (pkg / "sub" / "__init__.py").write_text("")
    (pkg / "a.py").write_text("import json\n\ndef f():\n    from .sub.b import g\n    return g\n")
    (pkg / "sub" / "b.py").write_text("def g():\n    from ..a import f\n    return f\n")
    (pkg / "c.py").write_text("import demo.a\nfrom demo import sub\n")
    graph, libraries = import_graph(pkg)
    assert graph["demo.a"] == {"demo.sub.b"} and libraries["demo.a"] == {"json"}
    assert graph["demo.sub.b"] == {"demo.a"}
    assert graph["demo"] == {"demo.sub.b"} and graph["demo.c"] == {"demo.a", "demo.sub"}
    assert cycles(graph) == [["demo.a", "demo.sub.b"]]
