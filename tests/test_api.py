"""The public Python API and what the binding (``rust/python``) adds to the core: argument
conversion, the result object, batches. The grammar itself is tested by the case files."""

from __future__ import annotations

import gc
import importlib.metadata
import subprocess
import sys
import types
import weakref
from typing import Callable, Dict, Union

import pytest

import fromguard
from fromguard import Finding, FromHeader, Mailbox, Severity, Shadow, Syntax, Verdict
from fromguard._explain import explain


def _isort_key(name: str) -> tuple[int, str]:
    """The order ruff's RUF022 keeps ``__all__`` in: CONSTANTS, then Classes, then the
    rest, each group sorted."""
    group = 0 if name.isupper() and len(name) > 1 else 1 if name[:1].isupper() else 2
    return group, name


def test_all_is_exact_and_sorted() -> None:
    assert fromguard.__all__ == sorted(fromguard.__all__, key=_isort_key)
    # Submodules (cli, reference) appear as attributes once imported; they are not names
    # of the API.
    public = {
        name
        for name, value in vars(fromguard).items()
        if not name.startswith("_") and not isinstance(value, types.ModuleType)
    }
    assert set(fromguard.__all__) == public


def test_the_reference_is_not_imported_with_the_package() -> None:
    code = "import sys, fromguard; print('fromguard.reference' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


def test_version_is_the_distributions() -> None:
    try:
        installed = importlib.metadata.version("fromguard")
    except importlib.metadata.PackageNotFoundError:
        pytest.skip("fromguard is not installed, only importable from the checkout")
    assert fromguard.__version__ == installed


def test_result_attributes() -> None:
    value = b"Dr. Jane Doe <jane@example.org>"
    result = fromguard.parse(value)
    assert isinstance(result, FromHeader)
    assert result.value is value  # bytes are used as they are, not copied
    assert (result.utf8, result.groups) == (True, False)
    assert result.verdict is Verdict.LEGACY
    assert result.syntax is Syntax.OBSOLETE
    assert result.address == "jane@example.org"
    (mailbox,) = result.mailboxes
    assert isinstance(mailbox, Mailbox)
    assert mailbox.display_name == "Dr. Jane Doe"
    assert mailbox.local_part_span == (14, 18)
    (finding,) = result.findings
    assert isinstance(finding, Finding)
    assert finding == Finding(
        "obs-phrase", Severity.LEGACY, 2, 3, fromguard.FINDINGS["obs-phrase"].description
    )
    assert finding.severity is Severity.LEGACY
    assert result.shadows == ()


def test_shadows() -> None:
    value = '"ceo@bank.example" <m@mallory.example> (Jörg@bü.example)'
    result = fromguard.parse(value)
    assert result.verdict is Verdict.DECEPTIVE
    assert result.shadows == (
        Shadow("ceo@bank.example", "display-name", 0, 18),
        Shadow("Jörg@bü.example", "comment", 39, 58),
    )
    assert all(isinstance(shadow, Shadow) for shadow in result.shadows)
    # The source names are the same string objects each time (interned, like the codes).
    assert result.shadows[0].source is fromguard.parse(value).shadows[0].source


def test_tuples_are_built_once() -> None:
    result = fromguard.parse("a@b.example (x)")
    assert result.mailboxes is result.mailboxes
    assert result.findings is result.findings
    assert result.shadows is result.shadows


def test_profile_is_kept() -> None:
    result = fromguard.parse("Jörg <a@b.example>", utf8=False, groups=True)
    assert (result.utf8, result.groups) == (False, True)
    assert "utf8-not-enabled" in [f.code for f in result.findings]


def test_str_is_encoded_with_surrogateescape() -> None:
    # What email.parser gives for a Latin-1 header: the original bytes come back.
    text = b"J\xf6rg <a@b.example>".decode("utf-8", "surrogateescape")
    assert fromguard.parse(text).value == b"J\xf6rg <a@b.example>"
    assert fromguard.parse("Jörg <a@b.example>").value == "Jörg <a@b.example>".encode()


def test_other_lone_surrogates_are_encoded_with_surrogatepass() -> None:
    assert fromguard.parse("\ud800 <a@b.example>").value == b"\xed\xa0\x80 <a@b.example>"


@pytest.mark.parametrize("value", [bytearray(b"a@b"), memoryview(b"a@b"), 1, None])
def test_wrong_argument_types_raise(value: object) -> None:
    with pytest.raises(TypeError, match="expected bytes or str"):
        fromguard.parse(value)  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="expected bytes or str"):
        fromguard.parse_many([b"a@b", value])  # type: ignore[list-item]


def test_profile_options_are_keyword_only() -> None:
    with pytest.raises(TypeError):
        fromguard.parse(b"a@b", False)  # type: ignore[misc]


def test_invalid_input_still_gives_a_result() -> None:
    result = fromguard.parse(b"\x00<")
    assert result.verdict is Verdict.INVALID
    assert result.syntax is Syntax.INVALID
    assert result.address is None


def test_parse_many_is_parse_over_each_value() -> None:
    values = [b"a@b.example", "Jörg <c@d.example>", b"", "x, y@z.example", "(e@f.example) g@h"]
    batch = fromguard.parse_many(iter(values), utf8=False, groups=True)
    assert isinstance(batch, list)
    assert len(batch) == len(values)
    for value, result in zip(values, batch):
        single = fromguard.parse(value, utf8=False, groups=True)
        assert (result.utf8, result.groups) == (False, True)
        assert result.value == single.value
        assert (result.verdict, result.syntax) == (single.verdict, single.syntax)
        assert result.mailboxes == single.mailboxes
        assert result.findings == single.findings
        assert result.shadows == single.shadows
    assert fromguard.parse_many([]) == []


def test_repr() -> None:
    assert repr(fromguard.parse("a@b.example")) == (
        "<FromHeader verdict=VALID syntax=STRICT address='a@b.example'>"
    )
    assert repr(fromguard.parse("")) == "<FromHeader verdict=INVALID syntax=INVALID address=None>"


@pytest.mark.parametrize("member", [*Verdict, *Syntax, *Severity, *fromguard.Action])
def test_enums_print_their_names_and_stay_ints(member: "fromguard.Verdict") -> None:
    """``print(r.verdict)`` shows ``VALID``, not ``0`` (Python 3.11 made IntEnum print its
    number); comparisons, arithmetic and numeric formats still see the int."""
    assert str(member) == f"{member}" == member.name
    assert f"{member:>12}" == f"{member.name:>12}"
    assert f"{member:d}" == str(int(member)) and "%d" % member == str(int(member))
    assert member == int(member) and member + 0 == int(member)


def test_explain_is_the_shared_implementation() -> None:
    result = fromguard.parse("Dr. A <a@b>")
    assert result.explain() == explain(result)
    assert result.explain().splitlines()[1].startswith("  ^  obs-phrase (legacy): ")


def test_results_are_immutable_and_made_only_by_parse() -> None:
    result = fromguard.parse("a@b.example")
    with pytest.raises(AttributeError):
        result.value = b"c@d.example"  # type: ignore[misc]
    with pytest.raises(TypeError):
        FromHeader()  # type: ignore[call-arg]


class Witness:
    """An object that can be weakly referenced (a bytes subclass's instance cannot)."""


class Text(str):
    result: FromHeader
    witness: Witness


class Raw(bytes):
    result: FromHeader
    witness: Witness


PARSE_ONE: Dict[str, Callable[[Union[str, bytes]], FromHeader]] = {
    "parse": fromguard.parse,
    "parse_many": lambda value: fromguard.parse_many([value])[0],
}


@pytest.mark.parametrize("how", sorted(PARSE_ONE))
@pytest.mark.parametrize(
    "make", [lambda: Text("\udce9 Alice <a@b.example>"), lambda: Raw(b"a@b.example")]
)
def test_a_cycle_through_a_result_is_collected(
    how: str, make: Callable[[], Union[Text, Raw]]
) -> None:
    # Results are kept out of the garbage collector, which holds only if they never keep
    # an object that can refer back to them: an instance of a subclass is copied.
    value = make()
    value.result = PARSE_ONE[how](value)
    value.witness = Witness()
    witness = weakref.ref(value.witness)
    del value
    gc.collect()
    assert witness() is None
