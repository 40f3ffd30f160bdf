"""Auto-checked exercises, one module per notebook: ``from dpo_course.exercises import ex02``.

Taught in 00_welcome. Each module exposes ``q1``, ``q2``, ... (`Exercise` objects) with
``check()``, ``hint()``, ``solution()`` and ``use()``.
"""

from dpo_course.exercises.framework import Case, Exercise, ExerciseFailed, Mistake, Result

__all__ = ["Case", "Exercise", "ExerciseFailed", "Mistake", "Result", "all_exercises"]


def all_exercises() -> dict[str, dict[str, Exercise]]:
    """Every exercise of the course: {"ex02": {"q1": Exercise, ...}, ...}."""
    import importlib
    import pkgutil

    import dpo_course.exercises as pkg

    found = {}
    for info in pkgutil.iter_modules(pkg.__path__):
        if info.name.startswith("ex") and info.name[2:].isdigit():
            module = importlib.import_module(f"{pkg.__name__}.{info.name}")
            found[info.name] = {k: v for k, v in vars(module).items() if isinstance(v, Exercise)}
    return dict(sorted(found.items()))
