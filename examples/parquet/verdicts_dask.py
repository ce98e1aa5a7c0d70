"""Add a ``verdict`` column to a Parquet dataset of From values with Dask DataFrame
(``pip install fromguard[dask,arrow] 'dask[dataframe]'``): each partition is judged
where it is read, on the cluster's workers.

    python examples/parquet/verdicts_dask.py SOURCE TARGET [--column from] [--dask ADDRESS]

SOURCE is what ``dask.dataframe.read_parquet`` reads (a file, a directory, a glob, an
s3:// URL); TARGET the directory of Parquet files written: SOURCE's columns and
``verdict`` (``valid``, ``legacy``, ``deceptive`` or ``invalid``; a null From is
``invalid``). Without --dask, Dask's own scheduler runs on this machine.
"""

from __future__ import annotations

import argparse
import contextlib
from typing import Iterator, Optional

import dask.dataframe as dd
import pandas as pd
import pyarrow as pa

import fromguard as fg

VERDICT_NAMES = [verdict.name.lower() for verdict in fg.Verdict]  # by value, 0 to 3


def with_verdicts(part: pd.DataFrame, column: str) -> pd.DataFrame:
    """``part`` and its From values' verdicts, read from the column's Arrow buffers."""
    verdicts = fg.verdicts(pa.array(part[column]), as_arrow=True).to_numpy()
    names = pd.Categorical.from_codes(verdicts, categories=VERDICT_NAMES)
    return part.assign(verdict=pd.Series(names, index=part.index).astype("string"))


@contextlib.contextmanager
def cluster(address: Optional[str]) -> Iterator[None]:
    if address is None:
        yield
        return
    from distributed import Client

    with Client(address):
        yield


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("source")
    parser.add_argument("target")
    parser.add_argument("--column", default="from", help="the From values (default: from)")
    parser.add_argument("--dask", metavar="ADDRESS", help="a Dask scheduler (tcp://host:8786)")
    args = parser.parse_args()
    with cluster(args.dask):
        frame = dd.read_parquet(args.source)
        meta = frame._meta.assign(verdict=pd.Series(dtype="string"))
        judged = frame.map_partitions(with_verdicts, args.column, meta=meta)
        judged.to_parquet(args.target, write_index=False)


if __name__ == "__main__":
    main()
