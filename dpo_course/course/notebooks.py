"""Where the course's notebooks are, and the one headless runner every command uses.

Course tooling, not taught in a notebook. `dpo-course course`, `doctor` and `progress`, authoring and
``scripts/measure_notebooks.py`` all find the notebooks with `find_notebooks` and run them with
`execute_notebook`. Finding them never assumes a git checkout: after a plain ``pip install .`` (the
Colab setup cell installs the course that way) the package lives in site-packages, far from the notebooks.
The places tried, in order:

1. the folder given on the command line (if one is given, only that);
2. ``$DPO_COURSE_NOTEBOOKS`` (for every command: set, it is also what ``dpo-course course`` runs);
3. ``./notebooks`` (or ``./solutions``) in the current directory;
4. the current directory itself, if it holds ``NN_name.ipynb`` notebooks;
5. the checkout the package was installed from in editable mode (``pip install -e .``).
"""

from __future__ import annotations

import contextlib
import os
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

NOTEBOOKS_ENV = "DPO_COURSE_NOTEBOOKS"
KINDS = ("notebooks", "solutions")
PATTERN = "[0-9][0-9]_*.ipynb"


class NotebooksNotFound(FileNotFoundError):
    """No folder of notebooks was found; the message names every place that was tried."""


def checkout_root() -> Path | None:
    """The git checkout above the package (an editable install), or None (site-packages, a wheel)."""
    root = Path(__file__).resolve().parents[2]
    return root if (root / "pyproject.toml").is_file() and (root / "solutions").is_dir() else None


def _holds_notebooks(folder: Path) -> bool:
    return folder.is_dir() and any(folder.glob(PATTERN))


def _candidates(kind: str) -> Iterator[tuple[str, Path]]:
    if os.environ.get(NOTEBOOKS_ENV):
        yield f"${NOTEBOOKS_ENV}", Path(os.environ[NOTEBOOKS_ENV]).expanduser()
    yield "the current directory", Path.cwd() / kind
    yield "the current directory", Path.cwd()
    root = checkout_root()
    if root is not None:
        yield "the checkout", root / kind


def find_notebooks(folder: Path | str | None = None, kind: str = "notebooks") -> Path:
    """The folder of `kind` ("notebooks": the exercises, "solutions": solved) notebooks to use.

    An explicit `folder` is used as given (it must exist); otherwise the first of ``$DPO_COURSE_NOTEBOOKS``,
    ``./<kind>``, ``.`` and the editable checkout's ``<kind>/`` that holds ``NN_name.ipynb`` files.
    Raises `NotebooksNotFound` naming every place tried.
    """
    if kind not in KINDS:
        raise ValueError(f"kind must be one of {KINDS}, got {kind!r}")
    if folder is not None:
        folder = Path(folder).expanduser()
        if folder.is_dir():
            return folder
        raise NotebooksNotFound(f"{folder} is not a folder: pass the folder that holds the notebooks")
    tried = []
    for where, candidate in _candidates(kind):
        if _holds_notebooks(candidate):
            return candidate
        tried.append(f"{candidate} ({where})")
    raise NotebooksNotFound(
        f"no {kind} found; tried: " + "; ".join(tried) + f". Pass the folder, set ${NOTEBOOKS_ENV}, "
        "or run this from a copy of the course (git clone https://github.com/dpo-course/dpo-course)"
    )


def find_course_root(root: Path | str | None = None) -> Path:
    """The folder holding both ``solutions/`` and ``notebooks/`` (what authoring writes).

    `root` if given, else the parent of the solutions `find_notebooks` finds.
    """
    if root is not None:
        root = Path(root).expanduser()
        if (root / "solutions").is_dir():
            return root
        raise NotebooksNotFound(f"{root} has no solutions/ folder")
    return find_notebooks(kind="solutions").resolve().parent


def select_notebooks(folder: Path, wanted: list[str] | None = None) -> list[Path]:
    """The notebooks of `folder`, or only those whose name starts with one of `wanted` ("01", "02_dpo")."""
    paths = sorted(p for p in folder.glob("*.ipynb") if not p.name.startswith("."))
    if wanted:
        paths = [p for p in paths if any(p.name.startswith(w) or p.stem == w for w in wanted)]
    return paths


@contextlib.contextmanager
def environ(**values: str) -> Iterator[None]:
    """Set environment variables for the block (a kernel started inside inherits them)."""
    saved = {k: os.environ.get(k) for k in values}
    os.environ.update(values)
    try:
        yield
    finally:
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value


@dataclass
class NotebookRun:
    """One headless run: the executed notebook, its time, and what went wrong."""

    path: Path
    nb: object
    seconds: float = 0.0
    error: str | None = None  # the run stopped: a failing cell (errors not allowed), a timeout, a dead kernel
    cell_errors: list[str] = field(default_factory=list)  # cells that raised (errors allowed)

    @property
    def ok(self) -> bool:
        return self.error is None and not self.cell_errors


def _last_line(exc: Exception) -> str:
    text = str(exc).strip()
    return f"{type(exc).__name__}: {text.splitlines()[-1][:200] if text else ''}"


def _cell_errors(index: int, cell) -> list[str]:
    return [
        f"cell {index}: {out.get('ename')}: {out.get('evalue', '')}"[:200]
        for out in cell.get("outputs", [])
        if out.get("output_type") == "error"
    ]


def execute_notebook(
    path: Path,
    *,
    timeout: int = 600,
    allow_errors: bool = False,
    env: dict[str, str] | None = None,
    on_cell: Callable[[int, object], None] | None = None,
    watch: Callable[[int], contextlib.AbstractContextManager] | None = None,
) -> NotebookRun:
    """Run `path` top to bottom in a fresh kernel (this interpreter's), in its own folder; never write it.

    `allow_errors`: keep going after a failing cell (as "Run All" with errors allowed) and list the errors;
    otherwise stop at the first one. `env`: variables the kernel sees. `on_cell(index, cell)` runs after
    each code cell; `watch(kernel_pid)` is a context manager held while the kernel runs (memory sampling).
    """
    import nbformat
    from nbclient import NotebookClient

    nb = nbformat.read(path, as_version=4)
    run = NotebookRun(Path(path), nb)
    client = NotebookClient(
        nb,
        timeout=timeout,
        kernel_name="python3",
        allow_errors=allow_errors,
        resources={"metadata": {"path": str(Path(path).parent)}},
    )
    start = time.time()
    with environ(**(env or {})), client.setup_kernel():
        pid = client.km.provisioner.process.pid if watch else 0
        with watch(pid) if watch else contextlib.nullcontext():
            try:
                for index, cell in enumerate(nb.cells):
                    if cell.cell_type != "code":
                        continue
                    client.execute_cell(cell, index)
                    run.cell_errors += _cell_errors(index, cell)
                    if on_cell is not None:
                        on_cell(index, cell)
            except Exception as exc:  # a failing cell, a timeout, a dead kernel: report it, keep what ran
                run.error = _last_line(exc)
    run.seconds = time.time() - start
    return run
