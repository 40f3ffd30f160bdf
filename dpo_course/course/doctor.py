"""``dpo-course doctor``: is this machine ready for the course? A table of checks, each with what to fix.

Course tooling, run by instructors before a workshop (README, "For instructors"). Checks the Python version and every
package against the course's requirements (pyproject.toml in a checkout, else the installed metadata),
free memory, the device, that the toy model loads offline in under 30 s and answers a prompt, and that
the notebooks are there. Exit code 0 when nothing failed (warnings allowed), 1 otherwise::

    dpo-course doctor
    dpo-course doctor --notebooks path/to/notebooks --skip-model
"""

from __future__ import annotations

import argparse
import importlib.metadata
import json
import os
import platform
import sys
import time
from dataclasses import dataclass
from pathlib import Path

from packaging.requirements import Requirement
from packaging.specifiers import SpecifierSet
from packaging.version import InvalidVersion, Version

from dpo_course.course.notebooks import NotebooksNotFound, checkout_root, find_notebooks

DIST = "dpo-course"
OK, WARN, FAIL = "ok", "warn", "fail"
ICONS = {OK: "✓", WARN: "!", FAIL: "✗"}
MIN_FREE_GB = 2.0
MODEL_LOAD_LIMIT_S = 30.0


@dataclass
class Check:
    """One line of the report: what was checked, how it went, what was found and how to fix it."""

    name: str
    status: str
    detail: str
    fix: str = ""


# ---------------------------------------------------------------------------------- requirements


def course_requirements() -> tuple[str, list[Requirement]]:
    """(requires-python, runtime requirements): from pyproject.toml in a checkout, else the installed metadata."""
    root = checkout_root()
    pyproject = root / "pyproject.toml" if root is not None else None
    if pyproject is not None and sys.version_info >= (3, 11):
        import tomllib

        project = tomllib.loads(pyproject.read_text())["project"]
        return project.get("requires-python", ""), [Requirement(r) for r in project.get("dependencies", [])]
    meta = importlib.metadata.metadata(DIST)
    reqs = [Requirement(r) for r in importlib.metadata.requires(DIST) or []]
    return meta.get("Requires-Python", ""), [r for r in reqs if r.marker is None]


def _installed_version(name: str) -> str | None:
    try:
        return importlib.metadata.version(name)
    except importlib.metadata.PackageNotFoundError:
        return None


def _pip_spec(req: Requirement) -> str:
    return f"{req.name}{req.specifier}" if req.specifier else req.name


def check_python(requires: str, version: str | None = None) -> Check:
    version = version or platform.python_version()
    if not requires or SpecifierSet(requires).contains(version, prereleases=True):
        return Check("Python", OK, f"{version} (needs {requires or 'any'})")
    return Check(
        "Python",
        FAIL,
        f"{version}, but the course needs {requires}",
        "install Python 3.11 and run `make setup` again",
    )


def check_package(req: Requirement) -> Check:
    """Whether `req` is installed in a version its specifier allows (a local tag such as +cpu is fine)."""
    version = _installed_version(req.name)
    needs = str(req.specifier) or "any version"
    fix = f"pip install '{_pip_spec(req)}'  (or `make setup`)"
    if version is None:
        return Check(req.name, FAIL, f"not installed (needs {needs})", fix)
    try:
        ok = req.specifier.contains(Version(version), prereleases=True)
    except InvalidVersion:
        return Check(req.name, WARN, f"{version}: cannot parse the version (needs {needs})")
    return (
        Check(req.name, OK, f"{version} (needs {needs})")
        if ok
        else Check(req.name, FAIL, f"{version}, needs {needs}", fix)
    )


# ---------------------------------------------------------------------------------- the machine


def check_memory(min_free_gb: float = MIN_FREE_GB) -> Check:
    import psutil

    mem = psutil.virtual_memory()
    free, total = mem.available / 2**30, mem.total / 2**30
    detail = f"{free:.1f} GiB free of {total:.1f} GiB"
    if free < min_free_gb:
        return Check(
            "memory",
            WARN,
            detail,
            f"each notebook peaks under 1.5 GiB: close other programs to free {min_free_gb:.0f} GiB",
        )
    return Check("memory", OK, detail)


def check_device() -> Check:
    import torch

    from dpo_course._device import get_device

    device = get_device()
    if device.type == "cuda":
        return Check("device", OK, f"cuda: {torch.cuda.get_device_name(device)}")
    if device.type == "mps":
        return Check("device", OK, "mps (Apple GPU)")
    if os.environ.get("DPO_COURSE_DEVICE"):
        return Check("device", OK, f"{device.type} (forced by DPO_COURSE_DEVICE)")
    return Check("device", OK, f"cpu, {os.cpu_count()} cores: every notebook is sized for a laptop CPU")


def check_toy_model(limit_s: float = MODEL_LOAD_LIMIT_S) -> Check:
    """Load the toy SFT model from the package (never the network) and answer one prompt, within `limit_s`."""
    start = time.perf_counter()
    try:
        from dpo_course._generation import generate
        from dpo_course.toyworld import load_sft_model

        model, tokenizer = load_sft_model("cpu", model_id="toy")
        prompt = "What is the capital of France?"
        answer = generate(model, tokenizer, [prompt], max_new_tokens=24)[0]
    except Exception as exc:  # report anything: this is a diagnosis tool
        return Check(
            "toy model",
            FAIL,
            f"{type(exc).__name__}: {exc}"[:200],
            "reinstall the course: pip install . (the weights ship in dpo_course/toyworld/assets)",
        )
    seconds = time.perf_counter() - start
    detail = f"loaded offline and answered a prompt in {seconds:.1f} s ({len(answer.split())} words)"
    if seconds > limit_s:
        return Check(
            "toy model",
            FAIL,
            detail + f", over {limit_s:.0f} s",
            "this machine is too busy or too slow: close other programs",
        )
    note = (
        f"; DPO_COURSE_MODEL={os.environ['DPO_COURSE_MODEL']} is set"
        if os.environ.get("DPO_COURSE_MODEL")
        else ""
    )
    return Check("toy model", OK, detail + note)


def check_install() -> Check:
    """Which dpo_course Python imports, and from where: an editable checkout or an installed copy."""
    import dpo_course

    version = _installed_version(DIST) or "unknown version"
    where = Path(dpo_course.__file__).resolve().parent
    how = "editable, from the checkout" if checkout_root() is not None else "installed"
    scripts = [e for e in importlib.metadata.entry_points(group="console_scripts") if e.name == DIST]
    try:
        for script in scripts:  # an install older than the code points the command at a moved module
            script.load()
    except (ImportError, AttributeError) as exc:
        return Check(
            "course",
            FAIL,
            f"the dpo-course command points at {scripts[0].value}, which is gone ({type(exc).__name__})",
            "install the course again: make setup, or pip install -e . (the command's module moved)",
        )
    return Check("course", OK, f"dpo-course {version}, {how}: {where}")


def check_notebooks(folder: Path | None = None) -> Check:
    try:
        found = find_notebooks(folder)
    except NotebooksNotFound as exc:
        if "google.colab" in sys.modules:
            return Check("notebooks", WARN, "not found (fine on Colab: open each notebook from its badge)")
        return Check(
            "notebooks",
            FAIL,
            str(exc),
            "run this from a copy of the course, or pass --notebooks FOLDER (or set $DPO_COURSE_NOTEBOOKS)",
        )
    paths = sorted(found.glob("[0-9][0-9]_*.ipynb"))
    broken = []
    for path in paths:
        try:
            json.loads(path.read_text())
        except (OSError, ValueError):
            broken.append(path.name)
    if not paths:
        return Check(
            "notebooks", FAIL, f"no NN_name.ipynb notebooks in {found}", "git pull, or clone the course again"
        )
    if broken:
        return Check(
            "notebooks", FAIL, f"unreadable: {', '.join(broken)}", "restore them: git checkout -- notebooks/"
        )
    return Check("notebooks", OK, f"{len(paths)} in {found.resolve()}")


# ---------------------------------------------------------------------------------- report


def run_checks(*, notebooks: Path | None = None, model: bool = True) -> list[Check]:
    requires_python, requirements = course_requirements()
    checks = [check_python(requires_python), check_install()]
    checks += [check_package(r) for r in requirements]
    checks += [check_memory(), check_device()]
    if model:
        checks.append(check_toy_model())
    checks.append(check_notebooks(notebooks))
    return checks


def render(checks: list[Check]) -> str:
    """The report as a plain-text table, then one line per thing to fix."""
    width = max(len(c.name) for c in checks)
    lines = [f"{ICONS[c.status]} {c.name:<{width}}  {c.detail}" for c in checks]
    todo = [c for c in checks if c.fix and c.status != OK]
    if todo:
        lines += ["", "To fix:"] + [f"  {ICONS[c.status]} {c.name}: {c.fix}" for c in todo]
    failed = sum(c.status == FAIL for c in checks)
    warned = sum(c.status == WARN for c in checks)
    verdict = "ready for the course" if not failed else f"{failed} problem(s) to fix first"
    lines += ["", f"{verdict} ({len(checks)} checks, {failed} failed, {warned} warning(s))"]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="dpo-course doctor", description="Check this environment for the DPO course."
    )
    parser.add_argument(
        "--notebooks",
        type=Path,
        default=None,
        help="the notebooks folder (default: $DPO_COURSE_NOTEBOOKS, ./notebooks, or .)",
    )
    parser.add_argument("--skip-model", action="store_true", help="do not load the toy model")
    args = parser.parse_args(argv)
    checks = run_checks(notebooks=args.notebooks, model=not args.skip_model)
    print(render(checks))
    return 1 if any(c.status == FAIL for c in checks) else 0


if __name__ == "__main__":
    sys.exit(main())
