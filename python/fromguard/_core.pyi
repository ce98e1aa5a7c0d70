"""Stubs for the compiled core (``rust/python/src/lib.rs``)."""

from typing import Iterable, List, Optional, Sequence, Tuple, Union, final

from ._model import Finding, Mailbox, MessageCheck, Shadow, Syntax, Verdict

__all__ = [
    "FromHeader",
    "RuleSet",
    "__version__",
    "check_message",
    "parse",
    "parse_many",
    "verdicts",
]

__version__: str

@final
class FromHeader:
    """The parse of one From field body."""

    @property
    def value(self) -> bytes: ...
    @property
    def utf8(self) -> bool: ...
    @property
    def groups(self) -> bool: ...
    @property
    def verdict(self) -> Verdict: ...
    @property
    def syntax(self) -> Syntax: ...
    @property
    def mailboxes(self) -> Tuple[Mailbox, ...]: ...
    @property
    def address(self) -> Optional[str]: ...
    @property
    def findings(self) -> Tuple[Finding, ...]: ...
    @property
    def codes(self) -> Tuple[str, ...]: ...
    @property
    def shadows(self) -> Tuple[Shadow, ...]: ...
    def explain(self) -> str: ...

# Every function and method below raises fromguard.InternalError (fromguard._errors)
# for a bug in the core, never a panic.

def parse(value: Union[bytes, str], *, utf8: bool = True, groups: bool = False) -> FromHeader: ...
def check_message(
    raw: bytes, *, utf8: bool = True, groups: bool = False, rules: Optional[RuleSet] = None
) -> MessageCheck: ...
def _policy_check(
    raw: bytes, *, rules: Optional[RuleSet] = None
) -> Tuple[MessageCheck, Tuple[Finding, ...], Tuple[str, ...]]: ...
def parse_many(
    values: Iterable[Union[bytes, str]], *, utf8: bool = True, groups: bool = False
) -> List[FromHeader]: ...
def verdicts(
    values: Iterable[Union[bytes, str]], *, utf8: bool = True, groups: bool = False
) -> bytes: ...
def _verdicts_arrow(
    schema: object, array: object, *, utf8: bool = True, groups: bool = False
) -> bytes:
    """fromguard._batch's way in: verdicts over one Arrow array, given as the
    ``arrow_schema`` and ``arrow_array`` capsules of its ``__arrow_c_array__``."""

def _parse_many_arrow(
    schema: object, array: object, *, utf8: bool = True, groups: bool = False
) -> List[FromHeader]:
    """fromguard._batch's way in: parse_many over one Arrow array, given as the
    ``arrow_schema`` and ``arrow_array`` capsules of its ``__arrow_c_array__``."""

def _rewrite(
    raw: bytes,
    headers: Sequence[Tuple[str, str]],
    warning: Optional[Tuple[str, str]],
    *,
    body_only: bool,
    boundary: Optional[bytes],
) -> Tuple[bytes, Tuple[str, ...], int]:
    """fromguard._mime's way in: the MIME rewrite (see fromguard._mime.rewrite)."""

def _body_start(raw: bytes) -> int:
    """fromguard._mime's way in: where the message's body starts."""

def _inject_panic(trigger: Optional[bytes], /) -> None:
    """For tests only: judging a value equal to ``trigger`` panics (None: never)."""

@final
class RuleSet:
    # Raises fromguard.RuleError (fromguard._errors) for a rule that does not compile.
    def __new__(cls, rules: Sequence[Tuple[str, str, str]]) -> RuleSet: ...
    @property
    def names(self) -> Tuple[str, ...]: ...
    def match(self, raw: bytes) -> Tuple[str, ...]: ...
    def __len__(self) -> int: ...
