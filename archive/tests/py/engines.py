"""The standard analyses of docs/analysis.md on DuckDB and on Apache Spark (local mode, default
settings), over the same Hive-partitioned archive; checks that both engines give equal results.

    python engines.py ROOT [--engines duckdb,spark] [--time] [--json OUT]

ROOT is an archive root directory or an s3://bucket/prefix URL (endpoint from AWS_ENDPOINT_URL,
credentials from the usual AWS environment). DuckDB reads S3 through pyarrow's S3 filesystem
(DuckDB's httpfs extension is downloaded at run time, which an offline machine cannot); Spark's
S3A connector (hadoop-aws) is not in the pyspark wheel either, so for s3:// Spark reads a copy
that pyarrow fetched from the bucket (on EMR or Glue, S3A is installed and Spark reads the URL).

Every query is written once, in the SQL both engines accept, over one view per table; the only
dialect differences are spelled as tokens: {W} (the `window` partition column, a reserved word
quoted differently), MUL8(a, b) (an exact product of two DECIMAL(18, 8) columns: DuckDB wants one
factor widened first, Spark's DECIMAL(37, 16) result is exact as it is). Ratios are taken in
DOUBLE from exact sums: decimal division differs (DuckDB answers a DOUBLE, Spark a DECIMAL
rounded to 8 places).
Exit status 1 when any result differs (printed), 0 otherwise.
"""

import argparse
import datetime as dt
import decimal
import json
import os
import re
import sys
import tempfile
import time

TABLES = ["trades", "book_changes", "tops", "index_prices", "collector_heartbeat", "gaps",
          "fills", "settlements"]

QUERIES = {
    "rows_per_table_venue_day": """
        SELECT 'trades' AS t, date, venue, count(*) AS n FROM trades GROUP BY date, venue
        UNION ALL SELECT 'book_changes', date, venue, count(*) FROM book_changes GROUP BY date, venue
        UNION ALL SELECT 'tops', date, venue, count(*) FROM tops GROUP BY date, venue
        UNION ALL SELECT 'index_prices', date, venue, count(*) FROM index_prices GROUP BY date, venue
        ORDER BY t, date, venue""",
    "vwap_per_minute": """
        SELECT venue, date_trunc('minute', publish_ts) AS minute,
               CAST(sum(MUL8(price, size)) AS DOUBLE) / CAST(sum(size) AS DOUBLE) AS vwap,
               sum(size) AS volume, count(*) AS trades
        FROM trades GROUP BY venue, date_trunc('minute', publish_ts)
        ORDER BY venue, minute""",
    "latency_per_venue": """
        SELECT venue,
               percentile_cont(0.5) WITHIN GROUP (ORDER BY recv_ts_ns - exchange_ts_ns) / 1e6
                   AS p50_exchange_to_recv_ms,
               percentile_cont(0.99) WITHIN GROUP (ORDER BY publish_ts_ns - recv_ts_ns) / 1e3
                   AS p99_recv_to_bus_us
        FROM book_changes WHERE exchange_ts_ns IS NOT NULL
        GROUP BY venue ORDER BY venue""",
    "coverage": """
        SELECT date, role, count(DISTINCT {W}) AS windows,
               round(CAST(count(DISTINCT {W}) AS DOUBLE) * 100 / 288, 1) AS coverage_pct
        FROM collector_heartbeat GROUP BY date, role ORDER BY date, role""",
    "gaps": """
        SELECT kind, count(*) AS events, sum(count) AS records
        FROM gaps GROUP BY kind ORDER BY kind""",
    "bus_order_head": """
        SELECT 'book' AS t, segment, ring, epoch, seq, venue, instrument, price, size
        FROM book_changes
        UNION ALL
        SELECT 'trade', segment, ring, epoch, seq, venue, instrument, price, size FROM trades
        ORDER BY segment, ring, seq
        LIMIT 5""",
    "pnl_per_window": """
        WITH f AS (
            SELECT window_start_s,
                   count(DISTINCT client_order_id) AS orders,
                   count(*) AS fills,
                   sum(CASE WHEN side = 'buy' THEN MUL8(price, size) ELSE 0 END) AS bought,
                   sum(CASE WHEN side = 'sell' THEN MUL8(price, size) ELSE 0 END) AS sold,
                   sum(fee_usdc) AS fees
            FROM fills WHERE status = 'confirmed' GROUP BY window_start_s
        ), s AS (
            SELECT window_start_s, sum(payout_usdc) AS payout
            FROM settlements GROUP BY window_start_s
        )
        SELECT window_start_s,
               coalesce(orders, 0) AS orders,
               coalesce(fills, 0) AS fills,
               coalesce(sold, 0) - coalesce(bought, 0) - coalesce(fees, 0) + coalesce(payout, 0)
                   AS pnl_usdc
        FROM f FULL OUTER JOIN s USING (window_start_s)
        ORDER BY window_start_s""",
}

# Tables each query needs (a query whose tables are absent from the archive is skipped).
NEEDS = {
    "rows_per_table_venue_day": ["trades", "book_changes", "tops", "index_prices"],
    "vwap_per_minute": ["trades"],
    "latency_per_venue": ["book_changes"],
    "coverage": ["collector_heartbeat"],
    "gaps": ["gaps"],
    "bus_order_head": ["book_changes", "trades"],
    "pnl_per_window": ["fills", "settlements"],
}


def dialect(sql, engine):
    """The query in `engine`'s spelling of the two dialect tokens."""
    quote = '"window"' if engine == "duckdb" else "`window`"
    sql = sql.replace("{W}", quote)
    if engine == "duckdb":
        return re.sub(r"MUL8\((\w+), (\w+)\)", r"CAST(\1 AS DECIMAL(38, 8)) * \2", sql)
    return re.sub(r"MUL8\((\w+), (\w+)\)", r"(\1 * \2)", sql)


def s3_filesystem():
    import pyarrow.fs as pafs
    endpoint = os.environ.get("AWS_ENDPOINT_URL")
    kwargs = {"region": os.environ.get("AWS_REGION", os.environ.get("AWS_DEFAULT_REGION", "us-east-1"))}
    if endpoint:
        scheme, _, host = endpoint.partition("://")
        kwargs.update(endpoint_override=host, scheme=scheme)
    return pafs.S3FileSystem(**kwargs)


def present_tables(root):
    """Tables of the archive that hold at least one Parquet file."""
    import pyarrow.fs as pafs
    if root.startswith("s3://"):
        fs, base = s3_filesystem(), root[len("s3://"):].rstrip("/")
    else:
        fs, base = pafs.LocalFileSystem(), os.path.abspath(root)
    out = []
    for t in TABLES:
        try:
            infos = fs.get_file_info(pafs.FileSelector(f"{base}/{t}", recursive=True))
        except (FileNotFoundError, OSError):
            continue
        if any(i.path.endswith(".parquet") and "/." not in i.path for i in infos):
            out.append(t)
    return out


def duckdb_views(root, tables):
    import duckdb
    con = duckdb.connect()
    con.execute("SET TimeZone = 'UTC'")
    if root.startswith("s3://"):
        import pyarrow.dataset as ds
        fs, base = s3_filesystem(), root[len("s3://"):].rstrip("/")
        for t in tables:
            con.register(t, ds.dataset(f"{base}/{t}", format="parquet", filesystem=fs,
                                       partitioning="hive", exclude_invalid_files=False))
    else:
        for t in tables:
            con.execute(f"CREATE VIEW {t} AS SELECT * FROM read_parquet("
                        f"'{root}/{t}/**/*.parquet', hive_partitioning = true)")
    return con


def local_copy(root):
    """A local copy of an s3:// archive (pyarrow S3), for Spark without S3A; a path as it is."""
    if not root.startswith("s3://"):
        return root, None
    import pyarrow.fs as pafs
    tmp = tempfile.TemporaryDirectory(prefix="rb-spark-s3-")
    pafs.copy_files(root[len("s3://"):].rstrip("/"), tmp.name, source_filesystem=s3_filesystem(),
                    destination_filesystem=pafs.LocalFileSystem())
    return tmp.name, tmp


def spark_session():
    from pyspark.sql import SparkSession
    # Default settings: no legacy Parquet or timestamp flags. The session time zone is set so
    # date_trunc and rendered timestamps are in UTC whatever the machine's zone.
    builder = (SparkSession.builder.master("local[*]").appName("ringbolt-archive-engines")
               .config("spark.sql.session.timeZone", "UTC")
               .config("spark.ui.enabled", "false"))
    # Memory only (not a compatibility flag): exact percentiles of a day's book changes
    # (~170 M values) do not fit the default 1 GiB driver heap of local mode.
    if os.environ.get("RB_SPARK_DRIVER_MEMORY"):
        builder = builder.config("spark.driver.memory", os.environ["RB_SPARK_DRIVER_MEMORY"])
    return builder.getOrCreate()


def norm(v):
    """A value both engines render the same way: exact decimals as normalised text, timestamps
    and dates as UTC ISO text (floats stay floats: see `same`)."""
    if isinstance(v, decimal.Decimal):
        return format(v.normalize(), "f")
    if isinstance(v, dt.datetime):
        if v.tzinfo is not None:
            v = v.astimezone(dt.timezone.utc).replace(tzinfo=None)
        return v.isoformat()
    if isinstance(v, dt.date):
        return v.isoformat()
    return v


def same(a, b):
    """Equal results: same shape, equal values, floats (derived ratios and quantiles, computed in
    binary floating point by both engines) within a relative 1e-9."""
    if isinstance(a, list) and isinstance(b, list):
        return len(a) == len(b) and all(same(x, y) for x, y in zip(a, b))
    if isinstance(a, float) and isinstance(b, float):
        return abs(a - b) <= 1e-9 * max(abs(a), abs(b), 1.0)
    return a == b


def run_duckdb(root, tables, names, timings):
    con = duckdb_views(root, tables)
    out = {}
    for name in names:
        t = time.monotonic()
        rows = con.execute(dialect(QUERIES[name], "duckdb")).fetchall()
        timings.setdefault(name, {})["duckdb_s"] = round(time.monotonic() - t, 3)
        out[name] = [[norm(v) for v in r] for r in rows]
    return out


def run_spark(root, tables, names, timings):
    local, tmp = local_copy(root)
    t = time.monotonic()
    spark = spark_session()
    timings.setdefault("_startup", {})["spark_s"] = round(time.monotonic() - t, 3)
    try:
        for table in tables:
            spark.read.parquet(f"{local}/{table}").createOrReplaceTempView(table)
        out = {}
        for name in names:
            t = time.monotonic()
            rows = spark.sql(dialect(QUERIES[name], "spark")).collect()
            timings.setdefault(name, {})["spark_s"] = round(time.monotonic() - t, 3)
            out[name] = [[norm(v) for v in r] for r in rows]
        return out
    finally:
        spark.stop()
        if tmp is not None:
            tmp.cleanup()


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("root")
    ap.add_argument("--engines", default="duckdb,spark")
    ap.add_argument("--queries", help="comma-separated subset of the query names")
    ap.add_argument("--json", help="write results and timings here")
    args = ap.parse_args()
    tables = present_tables(args.root)
    names = [n for n in (args.queries.split(",") if args.queries else QUERIES)
             if all(t in tables for t in NEEDS[n])]
    engines = args.engines.split(",")
    timings, results = {}, {}
    if "duckdb" in engines:
        results["duckdb"] = run_duckdb(args.root, tables, names, timings)
    if "spark" in engines:
        results["spark"] = run_spark(args.root, tables, names, timings)
    mismatches = []
    if len(results) == 2:
        for name in names:
            d, s = results["duckdb"][name], results["spark"][name]
            if not same(d, s):
                mismatches.append(name)
                print(f"MISMATCH {name}:\n  duckdb {d[:5]}\n  spark  {s[:5]}", file=sys.stderr)
    summary = {"tables": tables, "queries": names, "timings": timings,
               "rows": {n: len(results[engines[0]][n]) for n in names},
               "mismatches": mismatches, "results": results}
    if args.json:
        with open(args.json, "w") as f:
            json.dump(summary, f, indent=1, default=str)
    print(json.dumps({k: summary[k] for k in ("tables", "queries", "timings", "rows", "mismatches")}))
    sys.exit(1 if mismatches else 0)


if __name__ == "__main__":
    main()
