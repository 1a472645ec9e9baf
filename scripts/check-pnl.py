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


def pnl_sql(root):
    doc_path = os.path.join(os.path.dirname(__file__), "..", "docs", "analysis.md")
    with open(doc_path) as f:
        doc = f.read()
    block = doc.split("<!-- pnl-sql -->")[1].split("```sql")[1].split("```")[0]
    return block.replace("{root}", root)


def main():
    root, report_path = sys.argv[1], sys.argv[2]
    with open(report_path) as f:
        report = json.load(f)
    pnl = report.get("pnl", report)
    if "error" in pnl:
        sys.exit(f"check-pnl: the report has no P&L: {pnl['error']}")
    if not os.path.isdir(os.path.join(root, "fills")):
        # No fills archived: the report must say zero.
        assert pnl["total"]["fills"] == 0, pnl["total"]
        print("check-pnl: no fills archived, report total 0: ok")
        return
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
