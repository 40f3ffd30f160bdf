"""A language model as a pairwise judge, with the toy judge's signature ``judge(prompt, a, b)``.

Taught in 07_evaluation. `LLMJudge` formats a judging prompt, generates a short answer and reads
the verdict with `parse_verdict`; answers it cannot read count as ``unparseable`` and as a tie.
`dpo_course.evaluate.win_rate` asks every question in both orders, so a judge that always says
"A" cancels out into ties instead of inflating a win rate.
"""

from __future__ import annotations

import re
import string
from collections import Counter
from collections.abc import Callable, Sequence

DEFAULT_TEMPLATE = """You are comparing two responses to the same user request.

User request:
{prompt}

Response A:
{response_a}

Response B:
{response_b}

Which response is better? Judge correctness first, then helpfulness and concision. Answer A or B."""

# Explicit forms first ("Response B", "answer: A", "B is better"), then a letter opening the answer.
# Key words match in any case; the letter must be a capital (a lower-case "a" is the article).
_EXPLICIT = [
    re.compile(
        r"(?i:\b(?:response|answer|option|choice|verdict|winner)\s*(?:is\s*)?)[:=\-]?\s*[\(\[]?([AB])(?![A-Za-z0-9])"
    ),
    re.compile(
        r"(?<![A-Za-z0-9])([AB])[\)\]]?\s+(?i:(?:is|was)\s+(?:the\s+)?(?:better|best|preferred|superior|stronger))"
    ),
]
_LEADING = re.compile(r"^[\s\"'*`#>\-\(\[]*([AB])(?![A-Za-z0-9'])")
_STANDALONE = re.compile(r"(?<![A-Za-z0-9'])([AB])(?![A-Za-z0-9'])")
_ECHO = re.compile(r"(?<![A-Za-z0-9])A\s*(?:or|/|and|vs\.?|versus)\s*B(?![A-Za-z0-9])")
_TIE = re.compile(r"\b(?:tie|equal(?:ly)?|same|neither|both)\b", re.I)


def parse_verdict(text: str) -> str | None:
    """Read "A", "B" or "tie" from a judge's answer; None when it cannot be read.

    In order: an explicit form ("Response B", "Answer: A", "(B)", "B is better"); a letter that
    opens the answer ("B.", "**A**"); then the first standalone capital A or B, unless the answer
    only echoes the question ("A or B"); then "tie", "equal", "neither". A lower-case "a" is
    never a verdict (it is the article), nor is an opening "A" followed by a lower-case word
    that is not a verb of judgement ("A better answer is B" reads as B).
    Taught in 07_evaluation (inside `LLMJudge`).
    """
    if not isinstance(text, str):
        return None
    for pattern in _EXPLICIT:
        match = pattern.search(text)
        if match:
            return match.group(1)
    match = _LEADING.match(text)
    if match and not _ARTICLE.match(text[match.end(1) - 1 :]):
        return match.group(1)
    if not _ECHO.search(text):
        for match in _STANDALONE.finditer(text):
            if not _ARTICLE.match(text[match.start(1) :]):
                return match.group(1)
    if _TIE.search(text):
        return "tie"
    return None


# "A good one", "A better answer": the article, not a verdict (but "A is", "A wins" are verdicts).
_ARTICLE = re.compile(r"A\s+(?!(?:is|was|wins|won|please|because|since)\b)[a-z]")


def _generate_default(model, tokenizer, prompts: list[str], *, max_new_tokens: int) -> list[str]:
    from dpo_course._generation import generate

    return generate(model, tokenizer, prompts, max_new_tokens=max_new_tokens)


class LLMJudge:
    """``judge = LLMJudge(model, tokenizer)``; ``judge(prompt, a, b) -> "A" | "B" | "tie"``.

    `template` must contain ``{prompt}``, ``{response_a}`` and ``{response_b}``; it is sent as
    the user turn of the judge's chat template and answered greedily (`max_new_tokens`).
    `generate_fn(model, tokenizer, prompts, max_new_tokens=...) -> list[str]` replaces
    `dpo_course.generate` (tests pass a scripted fake). Counters: `calls`, `unparseable`, and
    `counts` (a Counter of verdicts, "unparseable" included); `last_outputs` keeps the raw
    answers of the last call. An unparseable answer is a tie. Taught in 07_evaluation.
    """

    def __init__(
        self,
        model,
        tokenizer,
        *,
        template: str = DEFAULT_TEMPLATE,
        max_new_tokens: int = 8,
        generate_fn: Callable[..., list[str]] | None = None,
        batch_size: int = 16,
    ) -> None:
        fields = {name for _, name, _, _ in string.Formatter().parse(template) if name}
        missing = {"prompt", "response_a", "response_b"} - fields
        if missing:
            raise ValueError(
                f"template must contain {{prompt}}, {{response_a}} and {{response_b}}; missing {sorted(missing)}"
            )
        extra = fields - {"prompt", "response_a", "response_b"}
        if extra:
            raise ValueError(
                f"template has unknown fields {sorted(extra)}: escape literal braces as {{{{ }}}}"
            )
        if max_new_tokens < 1 or batch_size < 1:
            raise ValueError(
                f"max_new_tokens and batch_size must be >= 1, got {max_new_tokens} and {batch_size}"
            )
        self.model, self.tokenizer, self.template = model, tokenizer, template
        self.max_new_tokens, self.batch_size = max_new_tokens, batch_size
        self.generate_fn = generate_fn or _generate_default
        self.counts: Counter = Counter()
        self.last_outputs: list[str] = []

    @property
    def calls(self) -> int:
        return sum(self.counts.values())

    @property
    def unparseable(self) -> int:
        return self.counts["unparseable"]

    def format(self, prompt: str, completion_a: str, completion_b: str) -> str:
        """The judging prompt for one comparison (the template's fields say "response", as a judge reads it)."""
        return self.template.format(prompt=prompt, response_a=completion_a, response_b=completion_b)

    def judge_batch(
        self, prompts: Sequence[str], completions_a: Sequence[str], completions_b: Sequence[str]
    ) -> list[str]:
        """Judge many comparisons, `batch_size` per generate call; returns one verdict per comparison."""
        questions = [
            self.format(p, a, b) for p, a, b in zip(prompts, completions_a, completions_b, strict=True)
        ]
        outputs: list[str] = []
        for start in range(0, len(questions), self.batch_size):
            chunk = questions[start : start + self.batch_size]
            answers = list(
                self.generate_fn(self.model, self.tokenizer, chunk, max_new_tokens=self.max_new_tokens)
            )
            if len(answers) != len(chunk):
                raise ValueError(f"generate_fn returned {len(answers)} answers for {len(chunk)} questions")
            outputs.extend(answers)
        self.last_outputs = outputs
        verdicts = []
        for text in outputs:
            verdict = parse_verdict(text)
            self.counts[verdict or "unparseable"] += 1
            verdicts.append(verdict or "tie")
        return verdicts

    def __call__(self, prompt: str, completion_a: str, completion_b: str) -> str:
        return self.judge_batch([prompt], [completion_a], [completion_b])[0]

    def __repr__(self) -> str:
        return f"LLMJudge({type(self.model).__name__}, calls={self.calls}, unparseable={self.unparseable})"
