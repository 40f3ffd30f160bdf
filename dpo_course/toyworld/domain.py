"""The toy world's content: prompts, answer styles and the ground-truth reward.

Taught in 00_welcome. Everything is templated and deterministic, so the world is rebuilt from this
file alone: no download. Three kinds of prompt mirror the lesson's examples (a capital, a sum, a
small Python function); each has several phrasings, and every answer comes in one of four styles.
"""

from __future__ import annotations

import random
import re
from dataclasses import dataclass

STYLES = ("concise", "verbose", "wrong", "refusal")

CAPITALS = [
    ("France", "Paris"),
    ("Germany", "Berlin"),
    ("Italy", "Rome"),
    ("Spain", "Madrid"),
    ("Portugal", "Lisbon"),
    ("Austria", "Vienna"),
    ("Greece", "Athens"),
    ("Poland", "Warsaw"),
    ("Norway", "Oslo"),
    ("Sweden", "Stockholm"),
    ("Finland", "Helsinki"),
    ("Denmark", "Copenhagen"),
    ("Ireland", "Dublin"),
    ("Belgium", "Brussels"),
    ("Hungary", "Budapest"),
    ("Egypt", "Cairo"),
    ("Kenya", "Nairobi"),
    ("Japan", "Tokyo"),
    ("China", "Beijing"),
    ("India", "Delhi"),
    ("Canada", "Ottawa"),
    ("Mexico", "Mexico City"),
    ("Brazil", "Brasilia"),
    ("Peru", "Lima"),
    ("Chile", "Santiago"),
    ("Cuba", "Havana"),
    ("Russia", "Moscow"),
    ("Turkey", "Ankara"),
    ("Iran", "Tehran"),
    ("Thailand", "Bangkok"),
    ("Vietnam", "Hanoi"),
    ("Australia", "Canberra"),
]

# (name, argument, task phrase, correct return expressions, a plausible wrong one)
CODE_TASKS = [
    ("reverse_string", "s", "reverse a string", ["s[::-1]"], "s"),
    ("square", "n", "square a number", ["n * n", "n ** 2"], "n * 2"),
    ("is_even", "n", "check if a number is even", ["n % 2 == 0"], "n % 2 == 1"),
    ("list_sum", "xs", "add up a list of numbers", ["sum(xs)"], "len(xs)"),
    ("list_max", "xs", "find the largest number in a list", ["max(xs)"], "min(xs)"),
    ("to_upper", "s", "make a string upper case", ["s.upper()"], "s.lower()"),
    ("first_item", "xs", "get the first item of a list", ["xs[0]"], "xs[1]"),
    ("last_item", "xs", "get the last item of a list", ["xs[-1]"], "xs[0]"),
    ("count_items", "xs", "count the items in a list", ["len(xs)"], "sum(xs)"),
    ("double", "n", "double a number", ["n * 2", "2 * n"], "n * n"),
]

OPS = {"plus": lambda a, b: a + b, "minus": lambda a, b: a - b, "times": lambda a, b: a * b}
OP_VERBS = {"plus": "add", "minus": "take away", "times": "multiply by"}

PHRASINGS = {
    "capital": [
        "What is the capital of {country}?",
        "Name the capital of {country}.",
        "Which city is the capital of {country}?",
        "Tell me the capital of {country}.",
    ],
    "arithmetic": [
        "What is {a} {op} {b}?",
        "Compute {a} {op} {b}.",
        "How much is {a} {op} {b}?",
        "Tell me what {a} {op} {b} is.",
    ],
    "code": [
        "Write a Python function to {task}.",
        "Show me a Python function to {task}.",
        "Give me Python code to {task}.",
        "Write Python code to {task}.",
    ],
}

REFUSALS = ["I don't know, look it up.", "I'm not sure. You should look it up."]

VERBOSE_OPENERS = [
    "That is a good question, and I am happy to help you with it.",
    "Sure! Let me think about this carefully before I answer you.",
    "Great question. I will explain the answer in a few simple words for you.",
]
VERBOSE_CLOSERS = [
    "I hope this helps!",
    "Let me know if you have any other questions.",
    "I hope that answers it.",
]

# A fixed reference length makes the concision term stable: extra words past the concise answer.
CONCISION_SCALE = 25.0


@dataclass(frozen=True)
class Item:
    """One fact of the world: the thing a prompt asks about, in any phrasing."""

    kind: str  # "capital" | "arithmetic" | "code"
    key: tuple

    @property
    def item_id(self) -> str:
        return f"{self.kind}:" + ":".join(str(k) for k in self.key)

    def prompt(self, phrasing: int) -> str:
        template = PHRASINGS[self.kind][phrasing]
        if self.kind == "capital":
            return template.format(country=self.key[0])
        if self.kind == "arithmetic":
            return template.format(a=self.key[0], op=self.key[1], b=self.key[2])
        return template.format(task=_code_task(self.key[0])[2])

    def answer(self) -> str:
        if self.kind == "capital":
            return dict(CAPITALS)[self.key[0]]
        if self.kind == "arithmetic":
            a, op, b = self.key
            return str(OPS[op](a, b))
        return _code_task(self.key[0])[3][0]


def _code_task(name: str):
    for task in CODE_TASKS:
        if task[0] == name:
            return task
    raise KeyError(name)


def all_items() -> list[Item]:
    """Every fact of the world, in a fixed order."""
    items = [Item("capital", (country,)) for country, _ in CAPITALS]
    for a in range(2, 10):
        for b in range(2, 10):
            items.append(Item("arithmetic", (a, "plus", b)))
            items.append(Item("arithmetic", (a, "times", b)))
    for a in range(10, 20, 2):
        for b in range(1, 10, 2):
            items.append(Item("arithmetic", (a, "minus", b)))
    items += [Item("code", (task[0],)) for task in CODE_TASKS]
    return items


# ----------------------------------------------------------------------------- parsing prompts

_PROMPT_PATTERNS: list[tuple[re.Pattern, str]] = []
for _kind, _templates in PHRASINGS.items():
    for _t in _templates:
        _rx = re.escape(_t)
        _rx = _rx.replace(r"\{country\}", r"(?P<country>[A-Za-z ]+?)")
        _rx = _rx.replace(r"\{a\}", r"(?P<a>\d+)").replace(r"\{b\}", r"(?P<b>\d+)")
        _rx = _rx.replace(r"\{op\}", r"(?P<op>plus|minus|times)")
        _rx = _rx.replace(r"\{task\}", r"(?P<task>[a-z ]+?)")
        _PROMPT_PATTERNS.append((re.compile("^" + _rx + "$"), _kind))


def parse_prompt(prompt: str) -> Item:
    """The world item a prompt asks about; `ValueError` if the prompt is not one of the world's."""
    text = prompt.strip()
    for rx, kind in _PROMPT_PATTERNS:
        m = rx.match(text)
        if not m:
            continue
        if kind == "capital" and m["country"] in dict(CAPITALS):
            return Item("capital", (m["country"],))
        if kind == "arithmetic" and m["op"] in OPS:
            return Item("arithmetic", (int(m["a"]), m["op"], int(m["b"])))
        if kind == "code":
            for task in CODE_TASKS:
                if task[2] == m["task"]:
                    return Item("code", (task[0],))
    raise ValueError(
        f"not a toy-world prompt: {prompt!r}. The ground-truth reward only knows the world's own "
        "prompts (see dpo_course.toyworld.eval_prompts() for examples)."
    )


# ----------------------------------------------------------------------------- writing answers


def _code_block(name: str, arg: str, expr: str) -> str:
    return f"```python\ndef {name}({arg}):\n    return {expr}\n```"


def misconception(item: Item) -> str:
    """The wrong answer this fact attracts: fixed per fact, as real models' errors are systematic."""
    rng = random.Random(f"misconception:{item.item_id}")
    if item.kind == "capital":
        return rng.choice([cap for c, cap in CAPITALS if c != item.key[0]])
    if item.kind == "arithmetic":
        return str(int(item.answer()) + rng.choice([-3, -2, -1, 1, 2, 3]))
    return _code_task(item.key[0])[4]


def write_response(item: Item, style: str, rng: random.Random) -> str:
    """One response to `item` in `style`; `rng` picks among the templates and wrong answers."""
    if style not in STYLES:
        raise ValueError(f"style must be one of {STYLES}, got {style!r}")
    if style == "refusal":
        return rng.choice(REFUSALS)
    if item.kind == "capital":
        country = item.key[0]
        answer = item.answer()
        if style == "wrong":
            answer = misconception(item)
        core = f"The capital of {country} is {answer}."
        if style == "verbose":
            return f"{rng.choice(VERBOSE_OPENERS)} {country} has many cities. {core} {rng.choice(VERBOSE_CLOSERS)}"
        return core
    if item.kind == "arithmetic":
        a, op, b = item.key
        result = OPS[op](a, b)
        if style == "wrong":
            result = int(misconception(item))
        core = f"{a} {op} {b} is {result}."
        if style == "verbose":
            return (
                f"{rng.choice(VERBOSE_OPENERS)} We start with {a} and {OP_VERBS[op]} {b}. "
                f"So {core} {rng.choice(VERBOSE_CLOSERS)}"
            )
        return core
    name, arg, task, correct, wrong = _code_task(item.key[0])
    code = _code_block(name, arg, wrong if style == "wrong" else rng.choice(correct))
    if style == "verbose":
        return f"{rng.choice(VERBOSE_OPENERS)} Here is a short function that will {task}.\n{code}"
    return code


# ----------------------------------------------------------------------------- the ground truth


def _check_text(name: str, value, *, allow_empty: bool) -> str:
    if not isinstance(value, str):
        raise TypeError(f"{name} must be a str, got {type(value).__name__}")
    if not allow_empty and not value.strip():
        raise ValueError(f"{name} is empty")
    return value


def _is_refusal(response: str) -> bool:
    low = response.lower()
    return "don't know" in low or "look it up" in low or "not sure" in low


def is_correct(item: Item, response: str) -> bool | None:
    """True if the response gives the right answer, False if it gives a wrong one, None if neither."""
    if item.kind == "capital":
        named = {cap for _, cap in CAPITALS if re.search(rf"\b{re.escape(cap)}\b", response)}
        if not named:
            return None
        return named == {item.answer()}
    if item.kind == "arithmetic":
        numbers = re.findall(r"-?\d+", response)
        if not numbers:
            return None
        return int(numbers[-1]) == int(item.answer())
    returns = re.findall(r"return (.+)", response)
    if not returns:
        return None
    correct = {e.replace(" ", "") for e in _code_task(item.key[0])[3]}
    return all(r.strip().replace(" ", "") in correct for r in returns)


def concise_length(item: Item) -> int:
    """Word count of the concise correct answer: the length the reward does not penalise."""
    return len(write_response(item, "concise", random.Random(0)).split())


def reward(prompt: str, response: str) -> float:
    """Ground-truth reward of a response: correctness first, then concision.

    Taught in 00_welcome. A correct answer scores 1.0 minus up to 0.5 for words beyond the concise
    answer (0.02 a word); a refusal scores 0.0; a wrong answer, or one that gives no answer at
    all, scores -1.0. Raises `TypeError` for a non-string and `ValueError` for an empty or unknown
    prompt.
    """
    _check_text("prompt", prompt, allow_empty=False)
    _check_text("response", response, allow_empty=True)
    item = parse_prompt(prompt)
    verdict = is_correct(item, response)
    if verdict is None:
        return 0.0 if _is_refusal(response) else -1.0
    if not verdict:
        return -1.0
    extra = max(0, len(response.split()) - concise_length(item))
    return 1.0 - 0.5 * min(1.0, extra / CONCISION_SCALE)


def classify(prompt: str, response: str) -> str:
    """Which style a response is in, read off its reward: concise, verbose, wrong or refusal."""
    r = reward(prompt, response)
    if r >= 0.999:
        return "concise"
    if r > 0.0:
        return "verbose"
    if r == 0.0:
        return "refusal"
    return "wrong"


def judge(prompt: str, response_a: str, response_b: str) -> str:
    """Pairwise judge built on the ground-truth reward: returns "A", "B" or "tie".

    Taught in 06_building_preference_data; the LLM judge of 07_evaluation has the same signature.
    """
    for name, value in (("response_a", response_a), ("response_b", response_b)):
        _check_text(name, value, allow_empty=True)
    ra, rb = reward(prompt, response_a), reward(prompt, response_b)
    if abs(ra - rb) < 1e-9:
        return "tie"
    return "A" if ra > rb else "B"
