"""A Jinja sandbox with resource limits, for prompt templates from untrusted spec folders.

Jinja's own :class:`~jinja2.sandbox.SandboxedEnvironment` stops a template from reaching Python
internals, but not from spending the machine: ``{{ 'A' * 300000000 }}`` allocates 300 MB and
nested ``range`` loops run for minutes. :class:`BoundedEnvironment` adds, per render:

- a cap on the text a render produces (:data:`MAX_OUTPUT_CHARS`);
- a cap on the size of a string or list made by ``*``, ``%`` or the ``center``/``indent``
  filters before it is made (:data:`MAX_VALUE_CHARS`), and on exponents of ``**``;
- ``range`` of at most :data:`MAX_RANGE` items, and at most :data:`MAX_STEPS` loop steps over
  ranges in one render;
- a wall-clock budget (:data:`MAX_SECONDS`) checked at every step and every chunk of output.

Each breach raises :class:`jinja2.exceptions.SecurityError`, which the prompt renderer turns into
a located :class:`~fountain.errors.TemplateError`.
"""

from __future__ import annotations

import contextvars
import re
import time
from collections.abc import Iterator
from typing import Any

from jinja2.exceptions import SecurityError
from jinja2.sandbox import SandboxedEnvironment

MAX_OUTPUT_CHARS = 2_000_000  # a prompt is kilobytes; a conversation JSON included, still far below
MAX_VALUE_CHARS = 1_000_000
MAX_RANGE = 10_000
MAX_STEPS = 200_000
MAX_SECONDS = 5.0
MAX_EXPONENT = 1_000
_WIDE_FORMAT = re.compile(r"%[-+ #0]*(?:\*|\d{7,})|\{[^{}]*:[^{}]*\d{7,}")


class _Budget:
    """Steps taken and the deadline of the render in progress."""

    def __init__(self) -> None:
        self.steps = 0
        self.deadline = time.monotonic() + MAX_SECONDS

    def step(self, count: int = 1) -> None:
        self.steps += count
        if self.steps > MAX_STEPS:
            raise SecurityError(f"the template loops more than {MAX_STEPS:,} times")
        if self.steps % 1024 == 0:
            self.check_time()

    def check_time(self) -> None:
        if time.monotonic() > self.deadline:
            raise SecurityError(f"the template takes longer than {MAX_SECONDS:g} s to render")


_BUDGET: contextvars.ContextVar[_Budget | None] = contextvars.ContextVar("fountain_template_budget", default=None)


def _budget() -> _Budget:
    budget = _BUDGET.get()
    if budget is None:  # a render outside render_bounded (e.g. a trial in a test): its own budget
        budget = _Budget()
        _BUDGET.set(budget)
    return budget


class _CountedRange:
    """``range`` whose iteration counts against the render's step budget."""

    def __init__(self, *args: int):
        self._range = range(*args)
        if len(self._range) > MAX_RANGE:
            raise SecurityError(f"range() of more than {MAX_RANGE:,} items is not allowed in a prompt")

    def __len__(self) -> int:
        return len(self._range)

    def __getitem__(self, index: Any) -> Any:
        return self._range[index]

    def __iter__(self) -> Iterator[int]:
        budget = _budget()
        for value in self._range:
            budget.step()
            yield value


def _size(value: Any) -> int | None:
    return len(value) if isinstance(value, (str, list, tuple)) else None


def _check_size(size: int, what: str) -> None:
    if size > MAX_VALUE_CHARS:
        raise SecurityError(f"{what} would make a value of {size:,} items (the limit is {MAX_VALUE_CHARS:,})")


class BoundedEnvironment(SandboxedEnvironment):
    """The sandbox with the resource limits described in the module docstring."""

    intercepted_binops = frozenset({"*", "**", "%"})

    def __init__(self, **options: Any):
        super().__init__(**options)
        self.globals["range"] = _CountedRange
        self.globals.pop("lipsum", None)  # lipsum(n=...) writes any amount of text
        center, indent = self.filters["center"], self.filters["indent"]

        def bounded_center(value: Any, width: int = 80) -> str:
            _check_size(int(width), "center")
            return str(center(value, width))

        def bounded_indent(value: Any, width: Any = 4, *args: Any, **kwargs: Any) -> str:
            text = str(value)
            size = len(width) if isinstance(width, str) else int(width)
            _check_size(size * (text.count("\n") + 1) + len(text), "indent")
            return str(indent(value, width, *args, **kwargs))

        self.filters["center"] = bounded_center
        self.filters["indent"] = bounded_indent

    def call_binop(self, context: Any, operator: str, left: Any, right: Any) -> Any:
        if operator == "*":
            for sequence, count in ((left, right), (right, left)):
                size = _size(sequence)
                if size is not None and isinstance(count, int):
                    _check_size(size * count, "'*'")
        elif operator == "**":
            if isinstance(right, (int, float)) and abs(right) > MAX_EXPONENT and left not in (0, 1, -1):
                raise SecurityError(f"exponents above {MAX_EXPONENT:,} are not allowed in a prompt")
        elif operator == "%" and isinstance(left, str) and _WIDE_FORMAT.search(left):
            raise SecurityError("a format width of a million characters or more is not allowed in a prompt")
        return super().call_binop(context, operator, left, right)

    def wrap_str_format(self, value: Any) -> Any:
        """``str.format`` / ``format_map`` as the sandbox wraps it, refusing a million-wide field
        before Python builds the string."""
        wrapped = super().wrap_str_format(value)
        fmt = getattr(value, "__self__", None)
        if wrapped is not None and isinstance(fmt, str) and _WIDE_FORMAT.search(fmt):

            def refuse(*args: Any, **kwargs: Any) -> str:
                raise SecurityError("a format width of a million characters or more is not allowed in a prompt")

            return refuse
        return wrapped

    def call(__self, __context: Any, __obj: Any, *args: Any, **kwargs: Any) -> Any:  # noqa: N805 - Jinja's signature
        _budget().check_time()
        fmt = getattr(__obj, "__self__", None)
        name = getattr(__obj, "__name__", "")
        if isinstance(fmt, str) and name in ("format", "format_map") and _WIDE_FORMAT.search(fmt):
            raise SecurityError("a format width of a million characters or more is not allowed in a prompt")
        return super().call(__context, __obj, *args, **kwargs)


def render_bounded(template: Any, variables: dict[str, Any]) -> str:
    """Render ``template`` within the output, step and time limits (SecurityError otherwise)."""
    token = _BUDGET.set(_Budget())
    try:
        budget = _budget()
        parts: list[str] = []
        total = 0
        for chunk in template.generate(variables):
            total += len(chunk)
            if total > MAX_OUTPUT_CHARS:
                raise SecurityError(f"the rendered prompt is longer than {MAX_OUTPUT_CHARS:,} characters")
            budget.check_time()
            parts.append(chunk)
        return "".join(parts)
    finally:
        _BUDGET.reset(token)
