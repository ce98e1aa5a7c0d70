"""The ``fromguard`` command.

``fromguard check VALUE`` (or ``--file PATH``; ``-`` for either reads standard input)
prints how a From field body stands: the verdict, syntax, address, mailboxes, the
findings under the value and the shadow addresses. A value that starts with a field name
(``From:``, ``Sender:``, ``Reply-To:``, ``Resent-From:``: a whole header line pasted) is
checked without it, and a note on stderr says so: the field name is not part of the value,
and checking it would only report ``unterminated-group``; ``--as-is`` checks the text as
given. Its exit status lets a script act on it: 0 for ``VALID`` and ``LEGACY`` (what
honest mail looks like), 1 for ``DECEPTIVE`` and ``INVALID``, 2 for a usage error.

``fromguard policy check FILE`` loads a policy file as the services do and prints what
it does (``Policy.effective``), or why it does not load; ``--compare OLD`` adds what a
reload from OLD would change (``Policy.changes``).
"""

from __future__ import annotations

import argparse
import contextlib
import importlib
import json
import os
import re
import sys
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any, Dict, List, Optional, Sequence, Union

import fromguard

from ._core import FromHeader
from ._model import Verdict

if TYPE_CHECKING:
    from .policy import Policy

EXIT_ACCEPTABLE = 0
EXIT_SUSPECT = 1
EXIT_USAGE = 2

EXIT_BROKEN_PIPE = 128 + 13
"""The reader of the output went away (``fromguard scan ... | head``): the status a shell
reports for a program SIGPIPE ends."""


# The long-running services: command -> (module, help). A service's module is imported
# only when its command is run (or asked for --help): it needs what `check` and `scan`
# must run without (pymilter, aiohttp, aiosmtpd, prometheus-client, POSIX's grp and pwd:
# Windows has none of them), and each module gives its command's options and description.
_SERVICES = {
    "milter": (
        "milter",
        "run a milter that applies a policy to every message (Postfix, Sendmail)",
    ),
    "serve": (
        "serve",
        "answer policy decisions over HTTP on a unix socket or 127.0.0.1 (rspamd, Exim)",
    ),
    "smtp-filter": (
        "smtp",
        "run an SMTP content filter that applies a policy to every message (Postfix)",
    ),
}


def main(argv: Optional[Sequence[str]] = None) -> int:
    """Run the command line; returns the exit status."""
    arguments = sys.argv[1:] if argv is None else list(argv)
    parser = _parser(arguments)
    args = parser.parse_args(arguments)
    try:
        status = int(args.run(parser, args))
        sys.stdout.flush()
    except BrokenPipeError:
        # Nothing more can be written, not even what is buffered: point stdout at
        # /dev/null so that the flush at exit does not raise again.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return EXIT_BROKEN_PIPE
    return status


def _parser(argv: Sequence[str]) -> argparse.ArgumentParser:
    """The parser of the command line ``argv``: the service it names, if any, has its
    module imported and its options; the others are listed with their help only."""
    parser = argparse.ArgumentParser(
        prog="fromguard",
        description="Parse e-mail From: headers exactly as RFC 5322 defines them.",
    )
    parser.add_argument("--version", action="version", version=f"fromguard {fromguard.__version__}")
    commands = parser.add_subparsers(title="commands", required=True, metavar="COMMAND")

    check = commands.add_parser(
        "check",
        help="check one From field body",
        description="Check one From field body (the text after 'From:'). Exit status: 0 "
        "for VALID or LEGACY, 1 for DECEPTIVE or INVALID, 2 for a usage error.",
    )
    source = check.add_mutually_exclusive_group(required=True)
    source.add_argument("value", nargs="?", help="the field body ('-': read standard input)")
    source.add_argument(
        "--file",
        type=Path,
        help="read the field body from this file ('-': standard input; its final line "
        "break is dropped)",
    )
    check.add_argument(
        "--as-is",
        action="store_true",
        help="check the text as given even when it starts with a field name such as 'From:'",
    )
    check.add_argument("--no-utf8", action="store_true", help="reject raw UTF-8 (RFC 6532)")
    check.add_argument("--groups", action="store_true", help="allow RFC 6854 groups in From")
    check.add_argument("--json", action="store_true", help="print the result as JSON")
    check.set_defaults(run=_check)

    policy = commands.add_parser(
        "policy",
        help="check a policy file",
        description="Policy files (see examples/policies/).",
    )
    policy_commands = policy.add_subparsers(title="commands", required=True, metavar="COMMAND")
    policy_check = policy_commands.add_parser(
        "check",
        help="load a policy file as the services do and print what it does",
        description="Load a policy file as milter, serve, smtp-filter and scan load it, and "
        "print what it does, every default filled in: the action of each verdict and of "
        "each finding code it names, its rules, the reply of each condition that rejects, "
        "the header fields and the warning; or why it does not load, with the file and "
        "the line. Exit status: 0 when it loads, 2 when it does not.",
    )
    policy_check.add_argument("file", type=Path, metavar="FILE")
    policy_check.add_argument(
        "--compare",
        type=Path,
        metavar="OLD",
        help="also print what changes from the policy file OLD to FILE, as a reload from "
        "one to the other logs it (OLD must load too)",
    )
    policy_check.add_argument("--json", action="store_true", help="print it as JSON")
    policy_check.set_defaults(run=_policy_check)

    scan = commands.add_parser(
        "scan",
        help="check every message in files and folders (mbox, Maildir, MH, .eml, ...)",
        description="Check every message found in the PATHs (mail is recognised by its "
        "content: mbox, Maildir, MH and single-message files, gzip/bzip2/xz-compressed "
        "too; directories recursively), and report each message's evidence and a summary. "
        "What is skipped is listed with the reason. Exit status: 0 when every message is "
        "VALID or LEGACY and accepted, 1 when one is flagged, 2 for a usage error, a PATH "
        "that cannot be read, a message whose check failed (reported, and the scan goes "
        "on) or, with --fail-on-skipped, anything skipped.",
    )
    # Not Path: it would read s3://bucket/key as s3:/bucket/key.
    scan.add_argument("paths", nargs="+", metavar="PATH")
    scan.add_argument("--policy", type=Path, help="a policy TOML file (default: none, report only)")
    scan.add_argument(
        "--format", choices=("table", "jsonl", "csv"), default="table", help="(default: table)"
    )
    scan.add_argument("--output", type=Path, help="write the report here instead of stdout")
    scan.add_argument(
        "--html",
        type=Path,
        metavar="PATH",
        help="also write a self-contained HTML report here: the summary, charts and a "
        "filterable, searchable list of the messages with their findings",
    )
    scan.add_argument(
        "--only-flagged",
        action="store_true",
        help="report only flagged messages (the summary still counts every one)",
    )
    scan.add_argument(
        "--fail-on-skipped",
        action="store_true",
        help="exit with status 2 when a file or message was skipped",
    )
    scan.add_argument(
        "--width",
        type=int,
        metavar="COLUMNS",
        help="the table's width, at least 40 (default: the terminal's; with --output, "
        "no limit; 0: no limit)",
    )
    scan.add_argument(
        "--dask",
        metavar="SCHEDULER",
        help="scan on a Dask cluster (pip install fromguard[dask]): a scheduler's address "
        "(tcp://host:8786), or local:N for N worker processes on this machine; PATHs may "
        "then be fsspec URLs too (s3://..., gs://..., file://...)",
    )
    scan.set_defaults(run=_scan)

    # The parser takes no option with a value before the command: the first word that is
    # not an option is the command.
    named = next((word for word in argv if not word.startswith("-")), None)
    for command, (module_name, summary) in _SERVICES.items():
        service = commands.add_parser(command, help=summary)
        if command == named:
            try:
                module = importlib.import_module(f"fromguard.{module_name}")
            except ImportError as error:
                parser.error(f"{command} cannot run on this system: {error}")
            module.add_arguments(service)
    return parser


def _scan(parser: argparse.ArgumentParser, args: argparse.Namespace) -> int:
    from . import scan
    from .policy import Policy, PolicyError

    if args.width is not None and args.width != 0 and args.width < scan.MIN_WIDTH:
        parser.error(f"--width must be 0 (no limit) or at least {scan.MIN_WIDTH}")
    try:
        policy = None if args.policy is None else Policy.from_toml(args.policy)
    except (OSError, PolicyError) as error:
        parser.error(f"cannot load the policy: {error}")
    options = dict(
        only_flagged=args.only_flagged,
        fail_on_skipped=args.fail_on_skipped,
        # A report kept in a file is read later, whole: a terminal's width would cut it.
        width=0 if args.width is None and args.output is not None else args.width,
    )
    if (
        args.html is not None
        and args.output is not None
        and args.html.resolve() == args.output.resolve()
    ):
        parser.error("--html and --output name the same file")
    with contextlib.ExitStack() as opened:
        # Both files are opened before the scan starts: a path that cannot be written is
        # a usage error, not a long scan lost at its end.
        out: IO[str] = sys.stdout
        html: Optional[IO[str]] = None
        if args.output is not None:
            newline = "" if args.format == "csv" else None
            out = opened.enter_context(_open_for_writing(parser, args.output, newline))
        if args.html is not None:
            html = opened.enter_context(_open_for_writing(parser, args.html, None))
        if args.dask is not None:
            return _scan_on_dask(parser, args, policy, out, html, options)
        paths = [Path(path) for path in args.paths]
        return scan.run(paths, policy, args.format, out=out, html=html, **options)


def _open_for_writing(
    parser: argparse.ArgumentParser, path: Path, newline: Optional[str]
) -> IO[str]:
    try:
        return open(path, "w", encoding="utf-8", newline=newline)
    except OSError as error:
        parser.error(f"cannot write {path}: {error.strerror or error}")


def _scan_on_dask(
    parser: argparse.ArgumentParser,
    args: argparse.Namespace,
    policy: Optional[Policy],
    out: IO[str],
    html: Optional[IO[str]],
    options: Dict[str, Any],
) -> int:
    try:
        from . import dask_scan
    except ImportError as error:
        parser.error(f"--dask needs Dask: pip install fromguard[dask] ({error})")
    kind, _, workers = args.dask.partition(":")
    if kind == "local" and workers and not (workers.isdigit() and int(workers) > 0):
        parser.error(f"--dask local:N needs a number of workers, not {workers!r}")
    paths = [path if "://" in path else Path(path) for path in args.paths]
    with contextlib.ExitStack() as stack:
        try:
            client = stack.enter_context(dask_scan.connect(args.dask))
        except OSError as error:  # a timeout too
            parser.error(f"cannot reach the Dask scheduler {args.dask}: {error}")
        return dask_scan.run(client, paths, policy, args.format, out=out, html=html, **options)


def _policy_check(parser: argparse.ArgumentParser, args: argparse.Namespace) -> int:
    from .policy import Policy, PolicyError

    try:
        old = None if args.compare is None else Policy.from_toml(args.compare)
        policy = Policy.from_toml(args.file)
    except PolicyError as error:
        if args.json:
            fields = {"path": error.path, "line": error.line, "key": error.key}
            print(json.dumps({"ok": False, "error": str(error), **fields, "reason": error.reason}))
        else:
            sys.stderr.write(f"fromguard policy check: {error}\n")
        return EXIT_USAGE
    effective = policy.effective()
    changes = None if old is None else old.changes(policy)
    if args.json:
        result = {"ok": True, "path": str(args.file), "policy": effective}
        if changes is not None:
            result["changes"] = changes
        print(json.dumps(result, ensure_ascii=False, indent=2))
    else:
        print(f"{args.file}: ok, a whole policy")
        print(_policy_as_text(effective))
        if changes == {}:
            print(f"no changes from {args.compare}")
        elif changes is not None:
            print(f"changes from {args.compare}:\n{_changes_as_text(changes)}")
    return EXIT_ACCEPTABLE


def _policy_as_text(effective: Dict[str, Any]) -> str:
    replies = effective["replies"]

    def table(title: str, rows: List[List[str]]) -> List[str]:
        if not rows:
            return [f"{title} none"]
        widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]) - 1)]
        return [title] + ["  " + "  ".join([*map(str.ljust, row, widths), row[-1]]) for row in rows]

    def action(condition: str, name: str) -> str:
        return f"{name} ({replies[condition]})" if condition in replies else name

    verdicts = [[v, action(f"verdict:{v}", a)] for v, a in effective["verdicts"].items()]
    codes = [[c, action(f"code:{c}", a)] for c, a in effective["codes"].items()]
    rules = [
        [
            rule["name"],
            rule["target"],
            _show(rule["pattern"]),
            action(f"rule:{rule['name']}", rule["action"]),
        ]
        for rule in effective["rules"]
    ]
    headers = [f"  {name}: {value}" for name, value in effective["headers"]]
    warning = effective["warning"]
    lines = [
        *table("verdicts:", verdicts),
        *table("codes (any other code has no action of its own):", codes),
        *table("rules (target, pattern, action):", rules),
        f"reject reply (a reject without its own): {effective['reject']}",
        "headers (tag and warn add them):" if headers else "headers: none",
        *headers,
        "warning (warn prepends it):",
        *(f"  {_show(line)}" for line in warning["text"].split("\n")),
        "ASCII warning (for a text part whose charset cannot show the warning):",
        *(f"  {_show(line)}" for line in warning["ascii_text"].split("\n")),
    ]
    return "\n".join(lines)


def _changes_as_text(changes: Dict[str, Any]) -> str:
    """``Policy.changes`` one line per change: ``old -> new`` (``-``: not there)."""

    def shown(value: Any) -> str:
        return "-" if value is None else value if isinstance(value, str) else json.dumps(value)

    lines = []
    for section, kind in (("verdicts", "verdict"), ("codes", "code"), ("replies", "reply of")):
        for key, change in changes.get(section, {}).items():
            lines.append(f"  {kind} {key}: {shown(change['old'])} -> {shown(change['new'])}")
    for what, names in changes.get("rules", {}).items():
        if names:
            lines.append(f"  rules {what}" + (f": {', '.join(names)}" if names is not True else ""))
    for key in ("reject", "headers", "warning"):
        if key in changes:
            lines.append(f"  {key}: {shown(changes[key]['old'])} -> {shown(changes[key]['new'])}")
    if "weakened" in changes:
        lines.append(f"  weaker now: {', '.join(changes['weakened'])}")
    return "\n".join(lines)


def _check(parser: argparse.ArgumentParser, args: argparse.Namespace) -> int:
    value: Union[bytes, str]
    if args.value == "-" or args.file == Path("-"):
        value = _strip_final_line_break(sys.stdin.buffer.read())
    elif args.file is not None:
        try:
            value = _strip_final_line_break(args.file.read_bytes())
        except OSError as error:
            parser.error(f"cannot read {args.file}: {error.strerror or error}")
    else:
        # argv was decoded with surrogateescape, which parse() undoes: the bytes given
        # on the command line are the bytes parsed.
        value = args.value
    if not args.as_is:
        value = _without_field_name(value)
    result = fromguard.parse(value, utf8=not args.no_utf8, groups=args.groups)
    print(
        json.dumps(_as_json(result), ensure_ascii=False, indent=2)
        if args.json
        else _as_text(result)
    )
    return EXIT_ACCEPTABLE if result.verdict <= Verdict.LEGACY else EXIT_SUSPECT


_FIELD_NAME = re.compile(rb"(?i)(?:from|sender|reply-to|resent-from)[ \t]*:")


def _without_field_name(value: Union[bytes, str]) -> Union[bytes, str]:
    """The value without a leading field name, saying so on stderr."""
    data = value.encode("utf-8", "surrogateescape") if isinstance(value, str) else value
    name = _FIELD_NAME.match(data)
    if name is None:
        return value
    shown = name.group().decode("ascii")
    sys.stderr.write(
        f"fromguard check: note: {shown!r} is a field name, not part of the value: checking "
        "the text after it (--as-is checks the text as given)\n"
    )
    return data[name.end() :]


def _strip_final_line_break(data: bytes) -> bytes:
    """A file's last line ends with a line break that belongs to the file, not the value."""
    for ending in (b"\r\n", b"\n"):
        if data.endswith(ending):
            return data[: -len(ending)]
    return data


def _as_text(result: FromHeader) -> str:
    lines = [
        f"verdict:   {result.verdict.name}",
        f"syntax:    {result.syntax.name}",
        f"address:   {_show(result.address) if result.address is not None else '(none)'}",
        "mailboxes:" if result.mailboxes else "mailboxes: (none)",
    ]
    for mailbox in result.mailboxes:
        name = f"{mailbox.display_name!r} " if mailbox.display_name is not None else ""
        lines.append(f"  {name}<{_show(mailbox.addr_spec)}>")
    lines.append("")
    lines.append(result.explain())
    return "\n".join(lines)


def _show(text: str) -> str:
    """Text as it is, or quoted with escapes when it holds characters that do not print
    (a bidi control would reorder the terminal line)."""
    return text if text.isprintable() else repr(text)


def _as_json(result: FromHeader) -> Dict[str, Any]:
    findings: List[Dict[str, Any]] = [
        {**finding._asdict(), "severity": finding.severity.name.lower()}
        for finding in result.findings
    ]
    return {
        # JSON holds text: bytes that are not UTF-8 show as \x escapes (the spans stay
        # byte offsets into the value as parsed).
        "value": result.value.decode("utf-8", "backslashreplace"),
        "utf8": result.utf8,
        "groups": result.groups,
        "verdict": result.verdict.name.lower(),
        "syntax": result.syntax.name.lower(),
        "address": result.address,
        "mailboxes": [mailbox._asdict() for mailbox in result.mailboxes],
        "findings": findings,
        "shadows": [shadow._asdict() for shadow in result.shadows],
    }


if __name__ == "__main__":
    sys.exit(main())
