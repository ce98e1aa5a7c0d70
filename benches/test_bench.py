"""pytest-benchmark suites: ``pytest benches/`` (needs the ``bench`` extra; not part of the
default test run, whose testpaths is ``tests/``).

One benchmark per value set and implementation; each round processes the whole set, so
the figure per value is the round's time divided by ``extra_info["values"]``. Skipped
peers say why. ``python benches/compare.py`` prints the same comparison as one table.
"""

from __future__ import annotations

from typing import Any, List

import corpora
import peers
import pytest

CORPORA = corpora.corpora()
ENTRIES = peers.entries()


@pytest.mark.parametrize("corpus", sorted(CORPORA))
@pytest.mark.parametrize("entry", ENTRIES, ids=[e.name for e in ENTRIES])
def test_parse(benchmark: Any, corpus: str, entry: peers.Entry) -> None:
    if entry.prepare is None:
        pytest.skip(f"{entry.name}: {entry.skipped}")
    values: List[str] = CORPORA[corpus]
    runner = entry.prepare(values)
    benchmark.group = corpus
    benchmark.extra_info.update(values=len(values), task=entry.task)
    benchmark(runner, values)
