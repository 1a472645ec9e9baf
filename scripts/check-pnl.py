#!/usr/bin/env python3
"""Recomputes the paper P&L from an archive's `fills` and `settlements` with the plain SQL of
docs/analysis.md (DuckDB) and checks it against a P&L report (`report.json`'s `pnl`, or the JSON
of `ringbolt report pnl --json`) window by window and in total, to the cent.

usage: check-pnl.py ARCHIVE REPORT_JSON
"""
import json
import os
import sys

import duckdb


# A table with no file yet (no settlement before the first traded window ends) is an empty
# relation of the same columns: DuckDB refuses a glob that matches nothing.
EMPTY = {
    "fills": "(SELECT NULL::BIGINT AS window_start_s, NULL::UBIGINT AS client_order_id, "
    "NULL::VARCHAR AS side, NULL::DECIMAL(18, 8) AS price, NULL::DECIMAL(18, 8) AS size, "
    "NULL::DECIMAL(18, 8) AS fee_usdc, NULL::VARCHAR AS status WHERE false)",
    "settlements": "(SELECT NULL::BIGINT AS window_start_s, NULL::DECIMAL(18, 8) AS payout_usdc "
    "WHERE false)",
}


def pnl_sql(root):
    doc_path = os.path.join(os.path.dirname(__file__), "..", "docs", "analysis.md")
    with open(doc_path) as f:
        doc = f.read()
    sql = doc.split("<!-- pnl-sql -->")[1].split("```sql")[1].split("```")[0]
    for table, empty in EMPTY.items():
        if not os.path.isdir(os.path.join(root, table)):
            sql = sql.replace(
                f"read_parquet('{{root}}/{table}/**/*.parquet', hive_partitioning = true)", empty
            )
    return sql.replace("{root}", root)


def main():
    root, report_path = sys.argv[1], sys.argv[2]
    with open(report_path) as f:
        report = json.load(f)
    pnl = report.get("pnl", report)
    if "error" in pnl:
        sys.exit(f"check-pnl: the report has no P&L: {pnl['error']}")
    rows = duckdb.connect().execute(pnl_sql(root)).fetchall()
    windows = pnl["windows"]
    assert len(rows) == len(windows), (rows, windows)
    for (w, orders, fills, value), row in zip(rows, windows):
        assert int(w) == row["window_start_s"], (w, row)
        assert (int(orders), int(fills)) == (row["orders"], row["fills"]), (w, orders, fills, row)
        assert round(float(value), 2) == round(row["pnl_usdc"], 2), (w, value, row)
    total = sum(float(r[3]) for r in rows)
    assert round(total, 2) == round(pnl["total"]["pnl_usdc"], 2), (total, pnl["total"])
    print(f"check-pnl: {len(rows)} windows, total {total:.2f} USDC: SQL matches the report")


if __name__ == "__main__":
    main()
