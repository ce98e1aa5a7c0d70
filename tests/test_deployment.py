"""The milter as an operator installs it: the systemd unit in ``examples/systemd/`` and
the README's Postfix ``main.cf`` block, each checked by the program that reads it
(``systemd-analyze verify``, ``postconf``) and against each other, then both at work: a
Postfix whose smtpd and cleanup run chrooted, configured with the block as pasted, and
the milter started as the unit starts it (its directory step, its command line, its
reload), with ``--user`` standing in for the unit's user, which this machine lacks. The
SMTP content filter's unit and the README's ``main.cf`` and ``master.cf`` blocks for it
are checked too, the blocks with ``postconf`` (``tests/test_smtp_filter.py`` runs them).

``systemd-analyze`` (Debian's ``systemd`` package) and Postfix are installed by
``.ci/run``; without them these tests fail, never skip. systemd itself does not run in
the CI container, so the unit's sandboxing options are verified, not exercised.
"""

from __future__ import annotations

import argparse
import grp
import re
import shlex
import shutil
import stat
import subprocess
import sys
import uuid
from pathlib import Path
from typing import Dict, List, Tuple

import pytest

from fromguard.cli import _parser
from fromguard.smtp import HOLD_HELO
from milter_client import RunningMilter
from postfix_lab import TOOLS, Postfix, readme_block, without_trace

ROOT = Path(__file__).resolve().parent.parent
README = ROOT / "README.md"
UNIT = ROOT / "examples" / "systemd" / "fromguard-milter.service"
FILTER_UNIT = ROOT / "examples" / "systemd" / "fromguard-smtp-filter.service"
SERVE_UNIT = ROOT / "examples" / "systemd" / "fromguard-serve.service"
POLICY = ROOT / "examples" / "policies" / "exchange.toml"  # what the README installs
INSTALLED = "/opt/fromguard/bin/fromguard"  # where the README installs fromguard
QUEUE_DIRECTORY = "/var/spool/postfix"  # Debian's, which the unit and the block assume
STAND_IN_USER = "nobody"


def unit(path: Path = UNIT) -> Dict[str, List[str]]:
    """The unit's settings: each key's values in order (keys are unique across its
    sections)."""
    settings: Dict[str, List[str]] = {}
    for line in path.read_text(encoding="utf-8").splitlines():
        if line and not line.startswith(("#", "[")):
            key, _, value = line.partition("=")
            settings.setdefault(key, []).append(value)
    return settings


def command(setting: str, path: Path = UNIT) -> List[str]:
    """The unit's one command line of ``setting``, its systemd prefix dropped."""
    (line,) = unit(path)[setting]
    return shlex.split(line.lstrip("+-@:!"))


def reload_commands(path: Path = UNIT) -> List[List[str]]:
    """The unit's ExecReload command lines, which systemd runs in order, stopping at the
    first that fails."""
    return [shlex.split(line.lstrip("+-@:!")) for line in unit(path)["ExecReload"]]


def service_unit(path: Path, subcommand: str) -> Tuple[Dict[str, List[str]], argparse.Namespace]:
    """A service's unit, with what every one must do checked: run the installed
    ``fromguard SUBCOMMAND`` as the user ``fromguard`` with options that exist, on the
    README's policy file, in monitor mode first; reload by checking the file, then SIGHUP;
    allow the drain; not restart after a configuration error; be installed by the README.
    Its settings and parsed command line."""
    settings = unit(path)
    assert settings["User"] == ["fromguard"]
    start = command("ExecStart", path)
    assert start[:2] == [INSTALLED, subcommand]
    args = _parser(start[1:]).parse_args(start[1:])  # every option the unit passes exists
    assert args.mode == "monitor" and args.policy == Path("/etc/fromguard/policy.toml")
    assert reload_commands(path) == [
        [INSTALLED, "policy", "check", str(args.policy)],
        ["/bin/kill", "-HUP", "$MAINPID"],
    ]
    assert float(settings["TimeoutStopSec"][0]) > args.drain_timeout
    assert settings["RestartPreventExitStatus"] == ["2"]  # a configuration error
    assert f"install -m 0644 examples/systemd/{path.name}" in README.read_text("utf-8")
    return settings, args


def readme_main_cf() -> str:
    """The README's main.cf block for the milter, verbatim."""
    return readme_block(r"^smtpd_milters =")


def postconf(directory: Path, *arguments: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(TOOLS["postconf"]), "-c", str(directory), *arguments],
        capture_output=True,
        text=True,
        check=False,
    )


# -- The unit ----------------------------------------------------------------------------


@pytest.mark.parametrize("path", [UNIT, FILTER_UNIT, SERVE_UNIT], ids=lambda path: path.name)
def test_the_unit_passes_systemd_analyze_verify(tmp_path: Path, path: Path) -> None:
    analyze = shutil.which("systemd-analyze")
    if analyze is None:
        pytest.fail("systemd-analyze is missing (Debian's systemd package: .ci/run installs it)")
    # verify checks that the programs exist: fromguard is where this test runs it from.
    text = path.read_text(encoding="utf-8")
    assert INSTALLED in text
    program = Path(sys.executable).with_name("fromguard")
    assert program.exists()
    (tmp_path / path.name).write_text(text.replace(INSTALLED, str(program)), encoding="utf-8")
    done = subprocess.run(
        [analyze, "verify", str(tmp_path / path.name)], capture_output=True, text=True, check=False
    )
    # An unknown key or a bad value is only a warning on stderr: none is allowed.
    assert (done.returncode, done.stdout, done.stderr) == (0, "", "")


def test_the_unit_s_steps_agree_with_each_other_and_with_the_milter() -> None:
    settings, args = service_unit(UNIT, "milter")
    user, group = settings["User"], settings["Group"]
    assert (user, group) == (["fromguard"], ["postfix"])
    # The socket's directory: made as root before the start, for the unit's user and
    # group, mode 0750 (Postfix's group may enter, no one else).
    make_directory = command("ExecStartPre")
    assert settings["ExecStartPre"][0].startswith("+")
    assert make_directory[:2] == ["/usr/bin/install", "-d"]
    options = dict(zip(make_directory[2:-1:2], make_directory[3:-1:2]))
    assert options == {"-o": user[0], "-g": group[0], "-m": "0750"}
    directory = make_directory[-1]
    assert directory.startswith(QUEUE_DIRECTORY + "/")

    assert args.socket == f"unix:{directory}/fromguard.sock"
    assert args.socket_group == group[0] and args.socket_mode == 0o660
    assert args.user is None  # systemd sets the user
    # The README's main.cf names the same socket, inside the chroot.
    assert f"unix:{args.socket[len('unix:' + QUEUE_DIRECTORY) :]}," in readme_main_cf()

    # The README's override to enforce: the same command line without --mode monitor.
    (override,) = re.findall(
        r"^```ini\n(.*?)^```$", README.read_text(encoding="utf-8"), re.M | re.S
    )
    assert override.splitlines() == [
        "[Service]",
        "ExecStart=",
        "ExecStart=" + settings["ExecStart"][0].replace(" --mode monitor", ""),
    ]


def test_the_filter_unit_runs_what_the_readme_s_blocks_expect() -> None:
    settings, args = service_unit(FILTER_UNIT, "smtp-filter")
    assert "Group" not in settings
    # The ports of the README's main.cf and master.cf blocks.
    assert (args.listen, args.next_hop) == (("127.0.0.1", 10025), ("127.0.0.1", 10026))


def test_the_serve_unit_runs_the_readme_s_command_and_reaches_exim() -> None:
    settings, args = service_unit(SERVE_UNIT, "serve")
    assert "Group" not in settings
    # The README's command, run as the unit runs it, then enforcing.
    text = README.read_text("utf-8")
    (readme_command,) = re.findall(r"^fromguard serve (--policy .*?)\n(?!    )", text, re.M | re.S)
    readme_args = shlex.split(readme_command.replace("\\\n", " "))
    assert command("ExecStart", SERVE_UNIT)[2:] == [*readme_args, "--mode", "monitor"]
    # The socket: in the directory systemd makes, with Exim's group, which the service is in;
    # the Exim configuration the README gives names the same socket; rspamd's port too.
    (directory,) = settings["RuntimeDirectory"]
    (socket,) = args.socket
    assert Path(socket).parent == Path("/run") / directory
    assert settings["SupplementaryGroups"] == [args.socket_group] == ["Debian-exim"]
    assert f"FROMGUARD_SOCKET = {socket}" in text
    assert args.listen == [("127.0.0.1", 8025)]
    assert "AF_UNIX" in settings["RestrictAddressFamilies"][0].split()


# -- The README's main.cf block ----------------------------------------------------------


@pytest.mark.postfix
def test_the_readme_main_cf_block_is_valid_as_pasted(tmp_path: Path) -> None:
    (tmp_path / "main.cf").write_text(readme_main_cf(), encoding="utf-8")
    shutil.copy("/etc/postfix/master.cf", tmp_path / "master.cf")
    names = ("smtpd_milters", "non_smtpd_milters", "milter_protocol", "milter_default_action")
    done = postconf(tmp_path, "-h", *names)
    assert done.returncode == 0 and done.stderr == "", done
    milters = (
        "{ unix:/fromguard/fromguard.sock, default_action=tempfail,"
        " connect_timeout=5s, command_timeout=5s, content_timeout=10s }"
    )
    assert done.stdout.splitlines() == [milters, "$smtpd_milters", "6", "tempfail"]
    assert postconf(tmp_path, "-x", "-h", "non_smtpd_milters").stdout == milters + "\n"
    # Nothing else is set, nothing misspelt (postconf warns of an unused parameter).
    every = postconf(tmp_path, "-n")
    assert every.stderr == ""
    assert sorted(line.split(" = ")[0] for line in every.stdout.splitlines()) == sorted(
        ("config_directory", *names)
    )


@pytest.mark.postfix
def test_a_chrooted_postfix_with_the_readme_block_reaches_the_milter_the_unit_starts() -> None:
    postfix = Postfix()
    milter = None
    try:
        smtpd = f"127.0.0.1:{postfix.port}/inet"
        postfix.postconf("-F", f"{smtpd}/chroot = y", "cleanup/unix/chroot = y")
        with open(postfix.etc / "main.cf", "a", encoding="utf-8") as main_cf:
            main_cf.write(readme_main_cf())
        start = command("ExecStart")
        unit_args = _parser(start[1:]).parse_args(start[1:])
        policy = postfix.base / "policy.toml"
        shutil.copy(POLICY, policy)

        def in_lab(argument: str) -> str:
            """The unit's paths in the lab: its queue directory, its policy file."""
            replaced = argument.replace(QUEUE_DIRECTORY, str(postfix.spool))
            return replaced.replace(str(unit_args.policy), str(policy))

        # ExecStartPre as root, for the stand-in user; ExecStart's options, as that user.
        make_directory = [in_lab(argument) for argument in command("ExecStartPre")]
        make_directory[make_directory.index("-o") + 1] = STAND_IN_USER
        subprocess.run(make_directory, check=True)
        socket_path = Path(in_lab(unit_args.socket).removeprefix("unix:"))
        options = [in_lab(argument) for argument in start[2:]]
        milter = RunningMilter(
            policy, socket_path, *options, "--user", STAND_IN_USER, "--group", "postfix"
        )
        postfix_gid = grp.getgrnam("postfix").gr_gid
        directory = socket_path.parent.stat()
        assert (stat.S_IMODE(directory.st_mode), directory.st_gid) == (0o750, postfix_gid)
        socket_stat = socket_path.stat()
        assert (stat.S_IMODE(socket_stat.st_mode), socket_stat.st_gid) == (0o660, postfix_gid)
        postfix.start()

        # Monitor mode: the deceptive message is delivered as sent, the decision logged.
        token = f"<{uuid.uuid4().hex}@example.org>"
        sent = (
            'From: "ceo@bank.example" <m@mallory.example>\nTo: user@fromguard.test\n'
            f"Subject: chrooted\nMessage-ID: {token}\n\nHello.\n"
        ).encode()
        assert postfix.swaks(sent).status == 0
        assert without_trace(postfix.wait_delivered(token.encode())) == sent
        (entry,) = milter.messages()
        assert (entry["mode"], entry["action"], entry["policy_action"]) == (
            "monitor",
            "accept",
            "warn",
        )
        # ExecReload as systemd runs it: the commands in order, up to the first that fails.
        program = str(Path(sys.executable).with_name("fromguard"))
        pid = str(milter.process.pid)

        def systemctl_reload() -> int:
            for line in reload_commands():
                argv = [
                    in_lab(a).replace(INSTALLED, program).replace("$MAINPID", pid) for a in line
                ]
                status = subprocess.run(argv, capture_output=True, check=False).returncode
                if status:
                    return status
            return 0

        # A file cut short fails the reload where the operator runs it; no signal is sent.
        whole = policy.read_bytes()
        policy.write_bytes(whole[: len(whole) // 2])
        assert systemctl_reload() == 2
        policy.write_bytes(whole)
        assert systemctl_reload() == 0
        (reload,) = milter.wait_for("reload", 1)
        assert reload["result"] == "ok"
    finally:
        postfix.remove()
        if milter is not None:
            assert milter.stop() == 0


# -- The README's content filter blocks -------------------------------------------------


@pytest.mark.postfix
def test_the_readme_content_filter_blocks_are_valid_as_pasted(tmp_path: Path) -> None:
    """The main.cf and master.cf blocks as pasted into Debian's configuration (the lab,
    tests/test_smtp_filter.py, runs them), and the filter's command line and defaults
    against them."""
    (tmp_path / "main.cf").write_text(readme_block(r"^content_filter ="), encoding="utf-8")
    shutil.copy("/etc/postfix/master.cf", tmp_path / "master.cf")
    with open(tmp_path / "master.cf", "a", encoding="utf-8") as master_cf:
        master_cf.write(readme_block(r"^fromguard +unix"))
    every = postconf(tmp_path, "-n")
    assert every.stderr == ""
    assert every.stdout.splitlines()[1:] == ["content_filter = fromguard:[127.0.0.1]:10025"]

    services = postconf(tmp_path, "-M", "fromguard/unix", "127.0.0.1:10026/inet")
    assert services.stderr == ""
    transport, reinjection = (line.split()[:8] for line in services.stdout.splitlines())
    assert transport == ["fromguard", "unix", "-", "-", "n", "-", "10", "smtp"]
    assert reinjection == ["127.0.0.1:10026", "inet", "n", "-", "n", "-", "10", "smtpd"]
    listed = postconf(tmp_path, "-P")
    assert listed.stderr == ""
    options = dict(line.split(" = ", 1) for line in listed.stdout.splitlines() if " = " in line)
    options.update((line[:-2], "") for line in listed.stdout.splitlines() if line.endswith(" ="))
    reinjected = {k.split("/", 2)[2]: v for k, v in options.items() if k.startswith("127.0.0.1:")}
    assert reinjected["content_filter"] == ""  # not filtered twice
    assert reinjected["smtpd_helo_restrictions"] == f"check_helo_access,inline:{{{HOLD_HELO}=HOLD}}"
    assert "no_milters" in reinjected["receive_override_options"].split(",")
    assert reinjected["local_header_rewrite_clients"] == ""

    # The before-queue lines, added to Debian's smtp service.
    proxy = readme_block(r"smtpd_proxy_filter=")
    debian = (tmp_path / "master.cf").read_text(encoding="utf-8")
    smtp_line = re.search(r"^smtp +inet .*\n", debian, re.M)
    assert smtp_line is not None
    (tmp_path / "master.cf").write_text(
        debian[: smtp_line.end()] + proxy + debian[smtp_line.end() :], encoding="utf-8"
    )
    listed = postconf(tmp_path, "-P", "smtp/inet/smtpd_proxy_filter")
    assert (listed.stdout, listed.stderr) == (
        "smtp/inet/smtpd_proxy_filter = 127.0.0.1:10025\n",
        "",
    )

    # The command line the README runs, and the defaults the blocks rely on.
    (line,) = re.findall(r"`(fromguard smtp-filter [^`]*)`", README.read_text(encoding="utf-8"))
    arguments = shlex.split(line)[1:]
    args = _parser(arguments).parse_args(arguments)
    assert (args.listen, args.next_hop) == (("127.0.0.1", 10025), ("127.0.0.1", 10026))
    assert args.mode == "monitor" and args.max_messages > int(transport[6])
