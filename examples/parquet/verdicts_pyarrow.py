"""Add a ``verdict`` column to a Parquet dataset of From values, batch by batch with
pyarrow.dataset (``pip install fromguard[arrow]``): no Python object per value, and
never the whole dataset in memory.

    python examples/parquet/verdicts_pyarrow.py SOURCE TARGET [--column from]

SOURCE is a Parquet file or a directory of them (any path pyarrow.dataset reads, an
s3:// URL too); TARGET is the Parquet file written: SOURCE's columns and ``verdict``
(``valid``, ``legacy``, ``deceptive`` or ``invalid``; a null From is ``invalid``).
"""

from __future__ import annotations

import argparse

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.dataset as ds
import pyarrow.parquet as pq

import fromguard as fg

# fg.Verdict's values are 0 to 3: a verdict byte indexes this array.
VERDICT_NAMES = pa.array([verdict.name.lower() for verdict in fg.Verdict])


def with_verdicts(batch: pa.RecordBatch, column: str) -> pa.RecordBatch:
    """``batch`` and its From values' verdicts as a last column, ``verdict``."""
    verdicts = fg.verdicts(batch.column(column), as_arrow=True)  # a UInt8Array
    names = pc.take(VERDICT_NAMES, verdicts)
    return pa.RecordBatch.from_arrays(
        [*batch.columns, names], names=[*batch.schema.names, "verdict"]
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("source")
    parser.add_argument("target")
    parser.add_argument("--column", default="from", help="the From values (default: from)")
    args = parser.parse_args()
    dataset = ds.dataset(args.source, format="parquet")
    schema = dataset.schema.append(pa.field("verdict", pa.string()))
    with pq.ParquetWriter(args.target, schema) as writer:
        for batch in dataset.to_batches():
            writer.write_batch(with_verdicts(batch, args.column))


if __name__ == "__main__":
    main()
