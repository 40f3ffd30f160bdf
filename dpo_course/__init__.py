"""dpo_course: the library behind the DPO course notebooks.

Taught in 00_welcome: the notebooks import small, tested functions from here so that each
notebook shows the ~10 lines that matter and calls the rest.
"""

from dpo_course.generation import generate
from dpo_course.utils import get_device, seed_everything

__all__ = ["generate", "get_device", "seed_everything"]
__version__ = "0.1.0"
