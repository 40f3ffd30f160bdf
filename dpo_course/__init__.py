"""dpo_course: the library behind the DPO course notebooks.

Taught in 00_welcome: the notebooks import small, tested functions from here so that each
notebook shows the ~10 lines that matter and calls the rest. Each subpackage's ``__init__`` is its
public face: import a name from there (``from dpo_course.data import PreferenceCollator``), never
from the module inside it. The README's "The library" section is the table of contents.
"""

from dpo_course._device import eval_mode, get_device, seed_everything
from dpo_course._generation import chat_prompt, generate

__all__ = ["chat_prompt", "eval_mode", "generate", "get_device", "seed_everything"]
__version__ = "0.1.0"
