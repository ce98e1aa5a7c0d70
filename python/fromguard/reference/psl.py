"""The organisational domain of a domain: its registrable domain under the Public Suffix
List, as DMARC's relaxed alignment compares domains (RFC 7489 §3.2). ``mail.bank.example``
and ``bank.example`` are one organisation; ``alice.github.io`` and ``bob.github.io`` are two.

The twin of ``rust/core/src/psl.rs``, reading the same snapshot of the list
(``fromguard/data/public_suffix_list.dat``, a copy of the core's
``rust/core/data/public_suffix_list.dat``: from https://publicsuffix.org/list/, MPL-2.0;
its header says which version). The core reads it with the ``publicsuffix`` crate; this
module parses it and walks its rules as that crate does, which is the algorithm of
https://publicsuffix.org/list/: the longest matching rule wins, ``*`` matches any one
label, an exception rule (``!``) wins over every other and gives its rule less its first
label, and a name no rule matches has the default rule ``*`` (its last label). ICANN and
private sections alike. The list is parsed on first use.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass, field
from importlib import resources
from typing import Dict, FrozenSet, List, Optional

from .lookalike import ascii_lower, normalize_domain

__all__ = ["organisation", "organisational_domain"]

_WILDCARD = "*"


@dataclass
class _Node:
    """A label of the rules, right to left: the labels that may precede it, and whether a
    rule ends here (``False``: a normal rule, ``True``: an exception rule)."""

    children: Dict[str, "_Node"] = field(default_factory=dict)
    exception: Optional[bool] = None


@functools.lru_cache(maxsize=None)
def _rules() -> Optional[_Node]:
    """The rules of the snapshot, as the crate reads them: lines after the first
    "BEGIN ICANN DOMAINS" or "BEGIN PRIVATE DOMAINS" marker that are not comments, each
    rule the line's first word. ``None`` if a rule is malformed or there is none (a test
    checks that the snapshot parses)."""
    data = resources.files("fromguard") / "data"
    # The tenant rules (tenant_suffixes.dat: every subdomain a different customer of a
    # mail-sending service) are appended to the list, as the core appends them.
    text = (data / "public_suffix_list.dat").read_text("utf-8")
    text += "\n" + (data / "tenant_suffixes.dat").read_text("utf-8")
    root = _Node()
    in_section = False
    for line in text.split("\n"):
        line = line[:-1] if line.endswith("\r") else line
        if "BEGIN ICANN DOMAINS" in line or "BEGIN PRIVATE DOMAINS" in line:
            in_section = True
            continue
        words = line.split()
        if line.startswith("//") or not in_section or not words:
            continue
        rule = words[0]
        exception = rule.startswith("!")
        if exception:
            if "." not in rule:
                return None
            rule = rule[1:]
        node = root
        for label in reversed(rule.split(".")):
            if not label:
                return None
            node = node.children.setdefault(label, _Node())
        node.exception = exception
    return root if root.children else None


def _suffix_labels(root: _Node, labels: List[str]) -> int:
    """How many labels, from the right, the public suffix of ``labels`` has."""
    node = root.children.get(labels[-1])
    suffix = 1  # the default rule "*"
    if node is None:
        return suffix
    for depth, label in enumerate(reversed(labels[:-1]), start=2):
        child = node.children.get(label)
        if child is None:
            child = node.children.get(_WILDCARD)
            if child is None:
                break
        node = child
        if node.exception is not None:
            if node.exception:
                return depth - 1
            suffix = depth
    return suffix


def organisational_domain(domain: str) -> str:
    """The organisational domain of ``domain``: the domain normalized as addresses are
    compared (ASCII lower case, no trailing dot, punycode decoded: see
    ``lookalike.normalize_domain``), then cut to its public suffix and one label more. A
    domain with no label beyond its public suffix (``co.uk``), an empty label
    (``a..example``) or a domain literal is its own organisational domain, normalized.
    Rules are matched on the decoded (Unicode) labels, as the list writes them."""
    normalized = normalize_domain(domain)
    root = _rules()
    labels = normalized.split(".")
    if root is None or normalized.startswith("[") or not all(labels):
        return normalized
    suffix = _suffix_labels(root, labels)
    if suffix >= len(labels):
        return normalized
    return ".".join(labels[-suffix - 1 :])


@functools.lru_cache(maxsize=None)
def _shared_mailbox_domains() -> FrozenSet[str]:
    """The organisational domains where any member of the public gets a mailbox
    (``fromguard/data/shared_mailbox_domains.txt``)."""
    text = (resources.files("fromguard") / "data" / "shared_mailbox_domains.txt").read_text("utf-8")
    lines = (line.strip() for line in text.split("\n"))
    return frozenset(line for line in lines if line and not line.startswith("#"))


def organisation(local_part: str, domain: str) -> str:
    """Who a mailbox belongs to, for comparing senders: its organisational domain, but at
    a shared mailbox provider (``gmail.com``: two addresses there are two people) the
    mailbox itself, normalized as addresses are compared."""
    organisational = organisational_domain(domain)
    if organisational in _shared_mailbox_domains():
        return ascii_lower(local_part) + "@" + normalize_domain(domain)
    return organisational
