"""The errors the compiled core raises, and how a gateway or a scan reports a failure.

The binding (``rust/python/src/errors.rs``) looks the two classes up once and raises
them; it is the only place that turns a Rust error into a Python one.
"""

from __future__ import annotations

from typing import NamedTuple, Optional

__all__ = ["Failure", "InternalError", "RuleError"]


class InternalError(Exception):
    """A bug in fromguard: the compiled core panicked. Never a verdict on the input: a
    correct result for it could not be computed. The process stays usable (the next
    call is unaffected).

    ``operation`` is what failed (``parse``, ``verdicts``, ``check_message``,
    ``RuleSet.match``, ...). ``input_length`` is the size of the input: bytes of a value
    or of a message (a str counted in UTF-8), values of a batch, rules of a ``RuleSet``;
    None for a batch from an iterator, whose length is not known. When the panic came
    from one value of a batch, ``index`` is the value's position and ``input_length`` its
    bytes. ``detail`` is the panic's message."""

    def __init__(
        self,
        operation: str,
        input_length: Optional[int],
        detail: str,
        index: Optional[int] = None,
    ) -> None:
        # All given to Exception, so that the error pickles and copies whole.
        super().__init__(operation, input_length, detail, index)
        self.operation = operation
        self.input_length = input_length
        self.detail = detail
        self.index = index

    def __str__(self) -> str:
        where = [] if self.index is None else [f"value {self.index} of the batch"]
        if self.input_length is not None:
            where.append(f"input length {self.input_length}")
        place = f" ({', '.join(where)})" if where else ""
        return (
            f"fromguard failed in {self.operation}{place}: {self.detail};"
            " this is a bug in fromguard, please report it"
        )


class RuleError(ValueError):
    """A rule that does not compile (``fromguard.RuleSet``): ``rule`` is its name,
    ``reason`` why (the pattern's syntax, a size limit, an unknown target)."""

    def __init__(self, rule: str, reason: str) -> None:
        super().__init__(rule, reason)
        self.rule = rule
        self.reason = reason

    def __str__(self) -> str:
        return f"rule {self.rule!r}: {self.reason}"


class Failure(NamedTuple):
    """An exception where a gateway or a scan goes on to the next message: ``kind`` is
    what it is counted under (``internal`` for an ``InternalError``, ``error`` for any
    other exception) and ``text`` says what happened, on one line."""

    kind: str
    text: str

    @classmethod
    def of(cls, error: Exception) -> Failure:
        kind = "internal" if isinstance(error, InternalError) else "error"
        return cls(kind, f"{type(error).__name__}: {error}")
