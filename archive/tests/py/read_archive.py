"""Reads every table of a ringbolt archive with pyarrow, DuckDB and Polars; prints JSON.

Usage: read_archive.py ROOT
Output: {table: {"pyarrow_rows", "duckdb_rows", "polars_rows", "pyarrow_types": {col: type},
                 "duckdb_types": {col: type}, "polars_types": {col: type}, "bus_rows": n}}
Every file is also opened on its own with pyarrow.parquet (footer + full read) so a corrupt
file fails loudly with its path.
"""
import glob
import json
import os
import sys

import duckdb
import polars as pl
import pyarrow.dataset as ds
import pyarrow.parquet as pq

root = sys.argv[1]
out = {}
for table_dir in sorted(glob.glob(os.path.join(root, "*"))):
    table = os.path.basename(table_dir)
    if table.startswith("_") or not os.path.isdir(table_dir):
        continue
    files = sorted(glob.glob(os.path.join(table_dir, "**", "*.parquet"), recursive=True))
    files = [f for f in files if not os.path.basename(f).startswith(".")]
    if not files:
        continue
    for f in files:
        pq.read_table(f)  # raises on a corrupt or partial file
    dataset = ds.dataset(table_dir, format="parquet", partitioning="hive")
    arrow_table = dataset.to_table()
    pattern = os.path.join(table_dir, "**", "*.parquet")
    con = duckdb.connect()
    duck_rows = con.execute(
        f"SELECT count(*) FROM read_parquet('{pattern}', hive_partitioning = true)"
    ).fetchone()[0]
    duck_types = {
        row[0]: row[1]
        for row in con.execute(
            f"DESCRIBE SELECT * FROM read_parquet('{pattern}', hive_partitioning = true)"
        ).fetchall()
    }
    lazy = pl.scan_parquet(pattern, hive_partitioning=True)
    polars_schema = lazy.collect_schema()
    polars_rows = lazy.select(pl.len()).collect().item()
    entry = {
        "pyarrow_rows": arrow_table.num_rows,
        "duckdb_rows": duck_rows,
        "polars_rows": polars_rows,
        "pyarrow_types": {f.name: str(f.type) for f in arrow_table.schema},
        "duckdb_types": duck_types,
        "polars_types": {k: str(v) for k, v in polars_schema.items()},
    }
    if "seq" in arrow_table.column_names:
        # Bus records only: the archiver's own heartbeat rows have segment 'archiver'.
        entry["bus_rows"] = con.execute(
            f"SELECT count(*) FROM read_parquet('{pattern}') WHERE segment <> 'archiver'"
        ).fetchone()[0]
    out[table] = entry
print(json.dumps(out))
