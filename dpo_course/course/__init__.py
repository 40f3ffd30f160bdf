"""Course tooling, not DPO: the `dpo-course` command and what stands behind it.

- cli.py: `dpo-course course | doctor | progress | train`;
- doctor.py: is this machine ready for the course?
- progress.py: a learner's exercises, checked headless;
- authoring.py: student notebooks made from the solutions (`python -m dpo_course.course.authoring`);
- notebooks.py: find_notebooks (works after a non-editable pip install) and execute_notebook, the one headless runner;
- profile.py: `profile_for(MODEL)`, the work a notebook does sized by its model (toy or real).
"""

from dpo_course.course.profile import WorkProfile, profile_for

__all__ = ["WorkProfile", "profile_for"]
