"""fromguard: the e-mail ``From:`` header parsed exactly as RFC 5322 defines it.

``parse(value)`` returns a ``FromHeader`` with the verdict a gateway acts on, the syntax
(the grammar's truth), the mailboxes, every departure from the grammar as a finding with
a byte span, and the shadow addresses (address-like strings a lenient mail program could
show instead of the real one). The pure-Python reference implementation of the same
grammar is ``fromguard.reference`` (imported on its own: ``import fromguard.reference``).

A bug in the compiled core raises ``InternalError`` (an ``Exception``), never a panic that
``except Exception`` misses; a rule that does not compile raises ``RuleError``.
"""

from ._batch import parse_many, verdicts
from ._catalogue import FINDINGS, FindingInfo
from ._core import FromHeader, RuleSet, check_message, parse
from ._core import __version__ as __version__  # the Cargo version, the package's too
from ._errors import InternalError, RuleError
from ._model import (
    Finding,
    HeaderField,
    Mailbox,
    MessageCheck,
    Severity,
    Shadow,
    Syntax,
    Verdict,
)
from .policy import Action, Outcome, Policy, PolicyError

__all__ = [
    "FINDINGS",
    "Action",
    "Finding",
    "FindingInfo",
    "FromHeader",
    "HeaderField",
    "InternalError",
    "Mailbox",
    "MessageCheck",
    "Outcome",
    "Policy",
    "PolicyError",
    "RuleError",
    "RuleSet",
    "Severity",
    "Shadow",
    "Syntax",
    "Verdict",
    "check_message",
    "parse",
    "parse_many",
    "verdicts",
]
