"""The layout stays honest: tags name the notebook that teaches a name, one face per name, short modules.

- every "Taught in NN" tag in a docstring of `dpo_course` names a notebook (solutions/NN_*.ipynb) that
  really uses the documented name;
- each public name is exported by exactly one subpackage face (its ``__init__``), and the notebooks, the
  README and docs/ import only from faces;
- no module of `dpo_course` is over 400 lines.
"""

from __future__ import annotations

import ast
import importlib
import json
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
PACKAGE = ROOT / "dpo_course"
FACES = (
    "dpo_course",
    "dpo_course.course",
    "dpo_course.data",
    "dpo_course.evaluate",
    "dpo_course.exercises",
    "dpo_course.logprobs",
    "dpo_course.losses",
    "dpo_course.scaling",
    "dpo_course.toyworld",
    "dpo_course.train",
)
MAX_LINES = 400
TAG = re.compile(r"Taught in (?P<text>.*?)(?:\.\s|\.$|;|$)")  # up to the end of its sentence
NOTEBOOK_STEM = re.compile(r"\b(\d\d)_[a-z0-9_]+\b")
LEADING_LIST = re.compile(r"^\d\d\b(?:[a-z0-9_]*)(?:\s*(?:,|and)\s*\d\d\b[a-z0-9_]*)*")
BACKTICKED = re.compile(r"`(?:[\w.]+\.)?(\w+)(?:\(\))?`")
IMPORT = re.compile(r"^\s*(?:from\s+(dpo_course[\w.]*)\s+import\b|import\s+(dpo_course[\w.]*))", re.M)


def _modules() -> list[Path]:
    return sorted(p for p in PACKAGE.rglob("*.py") if "__pycache__" not in p.parts)


def _dotted(path: Path) -> str:
    parts = path.relative_to(ROOT).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _notebook_text(path: Path, kinds: tuple[str, ...] = ("code",)) -> str:
    cells = json.loads(path.read_text())["cells"]
    return "\n".join(
        "".join(c["source"]) if isinstance(c["source"], list) else c["source"]
        for c in cells
        if c["cell_type"] in kinds
    )


SOLUTIONS = {p.name[:2]: p for p in sorted((ROOT / "solutions").glob("[0-9][0-9]_*.ipynb"))}


def _tagged_numbers(text: str) -> tuple[list[str], list[str]]:
    """(numbers, unknown stems) a tag's text names: its leading list ("02, 09", "02_x and 03_y") and
    full stems anywhere ("02_dpo_loss_from_scratch (fused: 09_scaling_up)" names 02 and 09). Bare numbers
    elsewhere are not tags ("07_evaluation (used in 03, 05)" names 07 only: using a name is not teaching it).
    """
    stems = [m.group(0) for m in NOTEBOOK_STEM.finditer(text)]
    unknown = [stem for stem in stems if SOLUTIONS.get(stem[:2], Path()).stem != stem]
    leading = LEADING_LIST.match(text)
    numbers = {stem[:2] for stem in stems}
    numbers |= set(re.findall(r"\b\d\d\b|\b\d\d(?=_)", leading.group(0))) if leading else set()
    return sorted(numbers), unknown


def _tags() -> list[tuple[str, str, list[str], list[str]]]:
    """(where, names that count as used, notebook numbers, unknown stems) for every tag in a docstring."""
    found = []
    for path in _modules():
        tree = ast.parse(path.read_text())
        module = _dotted(path)
        top = [n for n in tree.body if isinstance(n, (ast.FunctionDef, ast.ClassDef)) and n.name[0] != "_"]
        methods = [
            m for c in top if isinstance(c, ast.ClassDef) for m in c.body if isinstance(m, ast.FunctionDef)
        ]
        public = [n.name for n in top] + [m.name for m in methods if m.name[0] != "_"]  # `q.check(` counts
        # A module's tag holds when the notebook's code uses a public name defined in it, or its text names
        # the module ("the KTO loss" for losses/kto.py: module names are matched in any case, in any cell).
        owners = [(module, tree, [module.rsplit(".", 1)[-1], *public])]
        owners += [
            (f"{module}.{n.name}", n, [n.name])
            for n in ast.walk(tree)
            if isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef))
        ]
        for where, node, names in owners:
            doc = ast.get_docstring(node) or ""
            for match in TAG.finditer(" ".join(doc.split())):
                numbers, unknown = _tagged_numbers(match.group("text"))
                # "Taught in 05_variants (with `train_kto`)": the name the tag itself points at counts too
                named = BACKTICKED.findall(match.group("text"))
                found.append((where, [*names, *named], numbers, unknown))
    return found


def _module_of(where: str) -> str:
    return where if where in MODULES else where.rsplit(".", 1)[0]


MODULES = {_dotted(p) for p in _modules()}


def test_every_taught_in_tag_names_a_notebook_that_uses_the_name():
    tags = _tags()
    assert len(tags) >= 40, "the package's docstrings carry their Taught-in tags"
    problems = []
    for where, names, numbers, unknown in tags:
        problems += [f"{where}: 'Taught in {stem}': no notebook solutions/{stem}.ipynb" for stem in unknown]
        if not numbers:
            problems.append(f"{where}: a 'Taught in' tag without a notebook number")
        for number in numbers:
            notebook = SOLUTIONS.get(number)
            if notebook is None:
                problems.append(f"{where}: 'Taught in {number}': there is no notebook {number}")
                continue
            code = _notebook_text(notebook)
            used = any(re.search(rf"\b{re.escape(name)}\b", code) for name in names)
            if where.count(".") and where == _module_of(where):  # a module's tag: its name, in any cell
                every = _notebook_text(notebook, ("code", "markdown"))
                used = used or re.search(rf"\b{re.escape(names[0])}\b", every, re.I) is not None
            if not used:
                problems.append(f"{where}: 'Taught in {number}', but {notebook.name} never uses {names[0]}")
    assert not problems, "\n".join(problems)


def _exports(face: str) -> dict[str, object]:
    module = importlib.import_module(face)
    names = getattr(module, "__all__", None)
    assert names is not None, f"{face} has no __all__: a face lists what it exports"
    return {name: getattr(module, name) for name in names}


def test_each_public_name_is_exported_by_exactly_one_face():
    owners: dict[int, list[str]] = {}
    for face in FACES:
        for name, value in _exports(face).items():
            if isinstance(value, (int, float, str, bool, type(None))):
                owners.setdefault(hash((name, repr(value))), []).append(f"{face}.{name}")
            else:
                owners.setdefault(id(value), []).append(f"{face}.{name}")
    twice = [routes for routes in owners.values() if len(routes) > 1]
    assert not twice, "one public path per name; exported twice:\n" + "\n".join(map(", ".join, twice))


def _import_sites() -> list[tuple[str, str]]:
    sources = [
        (p, _notebook_text(p))
        for folder in ("solutions", "notebooks")
        for p in (ROOT / folder).glob("*.ipynb")
    ]
    sources += [(p, p.read_text()) for p in [ROOT / "README.md", *sorted((ROOT / "docs").rglob("*.md"))]]
    sources += [(p, p.read_text()) for p in sorted((ROOT / "docs").rglob("*.py"))]
    return [(str(path.relative_to(ROOT)), a or b) for path, text in sources for a, b in IMPORT.findall(text)]


def test_notebooks_readme_and_docs_import_only_from_faces():
    sites = _import_sites()
    assert len(sites) >= 50, "the notebooks import the package"
    wrong = sorted({f"{where}: {module}" for where, module in sites if module not in FACES})
    assert not wrong, "import from a face (a subpackage's __init__), not the module inside it:\n" + "\n".join(
        wrong
    )


@pytest.mark.parametrize("path", _modules(), ids=lambda p: str(p.relative_to(PACKAGE)))
def test_no_module_is_over_400_lines(path):
    lines = len(path.read_text().splitlines())
    assert lines <= MAX_LINES, (
        f"{path.relative_to(ROOT)} has {lines} lines (at most {MAX_LINES}): split it by concern"
    )


def _readme_tree() -> set[str]:
    """The module paths the README's "The library" tree lists (``ex00.py ... ex09.py`` stands for the range)."""
    text = (ROOT / "README.md").read_text()
    block = text.split("## The library", 1)[1].split("```text", 1)[1].split("```", 1)[0]
    listed, stack = set(), []
    for line in block.splitlines()[1:]:  # the first line is dpo_course/
        match = re.match(
            r"^(?P<indent>(?:│   |    )*)(?:├── |└── )(?P<name>\S+)(?:\s+\.\.\.\s+(?P<last>\S+))?", line
        )
        if not match:
            continue
        depth = len(match["indent"]) // 4
        stack[depth:] = [match["name"].rstrip("/")]
        if match["name"].endswith(".py"):
            listed.add("/".join(stack))
        if match["last"]:  # "ex00.py ... ex09.py"
            first, last = int(match["name"][2:4]), int(match["last"][2:4])
            listed |= {"/".join([*stack[:-1], f"ex{n:02d}.py"]) for n in range(first, last + 1)}
    return listed


def test_the_readme_tree_lists_every_module():
    listed = _readme_tree()
    actual = {
        str(p.relative_to(PACKAGE)) for p in _modules() if p.name != "__init__.py" or p.parent == PACKAGE
    }
    ranges = {name for name in listed if re.fullmatch(r"exercises/ex\d\d\.py", name)}
    missing = sorted(actual - listed)
    stale = sorted((listed - ranges) - actual)
    assert not missing and not stale, f"README's module tree: missing {missing}, no such module {stale}"
