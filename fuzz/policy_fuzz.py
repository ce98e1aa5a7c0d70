"""The policy layer under atheris (libFuzzer for Python): ``Policy.process`` on fuzzed
messages, three policies, each deciding as it would on the pure-Python reference's
check, with an outcome that keeps the message (``tests/policy_oracle.py`` says what is
checked; ``tests/test_policy_fuzz.py`` runs the same checks, bounded, under hypothesis).

    pip install -e '.[fuzz]'     # atheris
    python3 fuzz/seed.py         # seeds fuzz/corpus/policy/ with the messages
    PYTHONPATH=python python fuzz/policy_fuzz.py fuzz/corpus/policy -runs=100000

The arguments are libFuzzer's (``-runs``, ``-max_total_time``, ``-max_len``,
``-artifact_prefix``...); a broken check saves the input as ``crash-<sha1>`` and stops.
``fuzz/campaign.py`` runs it as the target ``policy``. The Python code of fromguard and
of the oracle is instrumented for coverage; the Rust core is not (its own targets fuzz it).
"""

from __future__ import annotations

import sys
from pathlib import Path

import atheris

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))

with atheris.instrument_imports(include=["fromguard", "policy_oracle"]):
    import policy_oracle


def test_one_input(data: bytes) -> None:
    policy_oracle.check(data)


def main() -> None:
    atheris.Setup(sys.argv, test_one_input)
    atheris.Fuzz()


if __name__ == "__main__":
    main()
