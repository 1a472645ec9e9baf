#!/usr/bin/env python3
"""ringbolt decide: the training pipeline, one command end to end.

    python decide/training/train.py [--windows 300] [--seed 7] [--input DUMP | --archive DIR] [--out decide/models]

1. Builds the feature matrix by calling the Rust feature code (`ringbolt features export`): the
   same catalogue the live reflex/model paths use, never re-implemented here. Input: a Parquet
   archive written by `ringbolt archive` (`--archive DIR|s3://BUCKET/PREFIX [--date YYYY-MM-DD]`: the market
   segments' records rebuilt in bus order), a record dump (`--input`, format in
   decide/src/dump.rs) or, without either, the synthetic market generator.
2. Labels each row with its window's outcome (Up iff Chainlink at the end >= at the start), as
   computed by the exporter from the Chainlink reports in the stream.
3. Splits by window (first 75 % train, last 25 % validation: no window straddles the split).
4. Trains XGBoost (xgboost-cpu) and CatBoost, exports both to ONNX (onnxmltools target_opset=15;
   CatBoost's ZipMap output removed), validates ONNX Runtime against the Python models.
5. Writes model.json (manifest read by the Rust loader), model_card.json and MODEL_CARD.md
   (schema hash, train/validation windows, log loss, Brier, AUC, calibration table).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[2]


def find_ringbolt(explicit: str | None) -> Path:
    for cand in [explicit, os.environ.get("RINGBOLT_BIN")]:
        if cand:
            return Path(cand)
    for profile in ["release", "debug"]:
        p = REPO / "target" / profile / "ringbolt"
        if p.exists():
            return p
    print("building ringbolt (cargo build --release -p ringbolt) ...", file=sys.stderr)
    subprocess.run(["cargo", "build", "--release", "-p", "ringbolt"], cwd=REPO, check=True)
    return REPO / "target" / "release" / "ringbolt"


def archive_arg(text: str):
    """An archive: a local directory (Path) or an s3:// URL, passed to the exporter as it is
    (`ringbolt features export` reads it through object_store, the layer replay uses)."""
    return text if text.startswith(("s3://", "s3a://")) else Path(text)


def export_features(ringbolt: Path, args, work: Path) -> dict:
    cmd = [str(ringbolt), "features", "export", "--out-dir", str(work), "--every-ms", str(args.every_ms)]
    if args.archive:
        cmd += ["--archive", str(args.archive)]
        if args.date:
            cmd += ["--date", args.date]
        if args.config:
            cmd += ["--config", str(args.config)]
    elif args.input:
        cmd += ["--input", str(args.input)]
    else:
        cmd += ["--windows", str(args.windows), "--seed", str(args.seed)]
    print("+", " ".join(cmd), file=sys.stderr)
    subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL)
    return json.loads((work / "meta.json").read_text())


def metrics(y: np.ndarray, p: np.ndarray) -> dict:
    from sklearn.metrics import brier_score_loss, log_loss, roc_auc_score

    p = np.clip(p.astype(np.float64), 1e-6, 1 - 1e-6)
    out = {
        "log_loss": float(log_loss(y, p, labels=[0, 1])),
        "brier": float(brier_score_loss(y, p)),
        "auc": float(roc_auc_score(y, p)) if len(np.unique(y)) == 2 else None,
    }
    bins = np.linspace(0, 1, 11)
    table = []
    for lo, hi in zip(bins[:-1], bins[1:]):
        m = (p >= lo) & (p < hi if hi < 1 else p <= hi)
        if m.sum():
            table.append({"bin": f"{lo:.1f}-{hi:.1f}", "rows": int(m.sum()),
                          "mean_predicted": float(p[m].mean()), "observed_up_rate": float(y[m].mean())})
    out["calibration"] = table
    return out


def strip_zipmap(model):
    """CatBoost's ONNX classifier ends in ZipMap (a sequence of maps); expose the tensor instead."""
    import onnx

    graph = model.graph
    for node in list(graph.node):
        if node.op_type == "ZipMap":
            tensor_name = node.input[0]
            zip_out = node.output[0]
            graph.node.remove(node)
            for i, out in enumerate(graph.output):
                if out.name == zip_out:
                    n_classes = 2
                    graph.output.remove(out)
                    graph.output.insert(i, onnx.helper.make_tensor_value_info(
                        tensor_name, onnx.TensorProto.FLOAT, [None, n_classes]))
                    break
    onnx.checker.check_model(model)
    return model


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--windows", type=int, default=300, help="synthetic windows (without --input)")
    ap.add_argument("--seed", type=int, default=7)
    ap.add_argument("--input", type=Path, help="record dump (RBDUMP1) instead of the synthetic market")
    ap.add_argument("--archive", type=archive_arg,
                    help="Parquet archive root written by `ringbolt archive`, or the s3://bucket/prefix "
                         "`ringbolt archive ship` shipped it to (endpoint: AWS_ENDPOINT_URL)")
    ap.add_argument("--date", help="with --archive: only this UTC date (YYYY-MM-DD)")
    ap.add_argument("--config", type=Path, help="with --archive: trade config whose [decide] section the features use")
    ap.add_argument("--every-ms", type=int, default=1000, help="feature row cadence within a window")
    ap.add_argument("--out", type=Path, default=REPO / "decide" / "models")
    ap.add_argument("--ringbolt", help="path of the ringbolt binary")
    ap.add_argument("--trees", type=int, default=120)
    ap.add_argument("--depth", type=int, default=4)
    args = ap.parse_args()

    import catboost
    import onnx
    import onnxmltools
    import onnxruntime as ort
    import xgboost
    from onnxmltools.convert.common.data_types import FloatTensorType

    work = Path(tempfile.mkdtemp(prefix="ringbolt-train-"))
    try:
        meta = export_features(find_ringbolt(args.ringbolt), args, work)
        X = np.load(work / "features.npy")
        R = np.load(work / "rows.npy")
    finally:
        pass
    names = meta["features"]
    y = R[:, 2].astype(np.int64)
    windows = np.unique(R[:, 0])
    n_val = max(1, len(windows) // 4)
    if len(windows) < 4:
        raise SystemExit(f"need >= 4 labelled windows, got {len(windows)}")
    train_w, val_w = windows[:-n_val], windows[-n_val:]
    tr = np.isin(R[:, 0], train_w)
    va = ~tr
    print(f"rows {len(y)} ({tr.sum()} train / {va.sum()} validation), windows {len(train_w)} / {len(val_w)}, "
          f"features {X.shape[1]}", file=sys.stderr)

    xgb = xgboost.XGBClassifier(n_estimators=args.trees, max_depth=args.depth, learning_rate=0.08,
                                subsample=0.8, colsample_bytree=0.8, base_score=0.5, tree_method="hist",
                                min_child_weight=20, reg_lambda=5.0,
                                random_state=args.seed, n_jobs=2, eval_metric="logloss")
    xgb.fit(X[tr], y[tr])
    cat = catboost.CatBoostClassifier(iterations=args.trees, depth=args.depth, learning_rate=0.08,
                                      random_seed=args.seed, thread_count=2, verbose=False, l2_leaf_reg=10,
                                      allow_writing_files=False)
    cat.fit(X[tr], y[tr])

    args.out.mkdir(parents=True, exist_ok=True)
    xgb_onnx = onnxmltools.convert_xgboost(xgb, initial_types=[("input", FloatTensorType([None, X.shape[1]]))],
                                           target_opset=15)
    onnx.save_model(xgb_onnx, str(args.out / "xgboost.onnx"))
    cat_path = work / "catboost_raw.onnx"
    cat.save_model(str(cat_path), format="onnx",
                   export_parameters={"onnx_domain": "ai.catboost", "onnx_model_version": 1,
                                      "onnx_graph_name": "ringbolt_decide_catboost"})
    onnx.save_model(strip_zipmap(onnx.load(str(cat_path))), str(args.out / "catboost.onnx"))

    # Validate ONNX Runtime against the Python models on the validation rows.
    def ort_proba(path: Path, x: np.ndarray) -> np.ndarray:
        sess = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
        outs = sess.run(None, {sess.get_inputs()[0].name: x})
        probs = outs[1] if len(outs) > 1 else outs[0]
        return np.asarray(probs)[:, 1]

    Xv = X[va].astype(np.float32)
    p_xgb = xgb.predict_proba(Xv)[:, 1]
    p_cat = cat.predict_proba(Xv)[:, 1]
    o_xgb = ort_proba(args.out / "xgboost.onnx", Xv)
    o_cat = ort_proba(args.out / "catboost.onnx", Xv)
    diff = {"xgboost": float(np.max(np.abs(p_xgb - o_xgb))), "catboost": float(np.max(np.abs(p_cat - o_cat)))}
    print(f"ONNX vs Python max |diff|: {diff}", file=sys.stderr)
    if max(diff.values()) > 1e-5:
        raise SystemExit(f"ONNX export does not reproduce the Python models: {diff}")

    ens = 0.5 * (o_xgb + o_cat)
    yv = y[va]
    i_base, i_impl = names.index("p_baseline"), names.index("implied_p_up")
    card = {
        "feature_schema_hash": meta["feature_schema_hash"],
        "features": len(names),
        "input": meta["input"],
        "rows": {"train": int(tr.sum()), "validation": int(va.sum())},
        "windows": {"train": [int(train_w[0]), int(train_w[-1]), len(train_w)],
                    "validation": [int(val_w[0]), int(val_w[-1]), len(val_w)]},
        "params": {"trees": args.trees, "depth": args.depth, "learning_rate": 0.08, "seed": args.seed},
        "onnx_vs_python_max_abs_diff": diff,
        "validation": {
            "ensemble": metrics(yv, ens),
            "xgboost": metrics(yv, o_xgb),
            "catboost": metrics(yv, o_cat),
            "baseline_lognormal": metrics(yv, X[va, i_base]),
            "market_implied": metrics(yv, X[va, i_impl]),
        },
        "versions": {"xgboost": xgboost.__version__, "catboost": catboost.__version__, "onnx": onnx.__version__,
                     "onnxmltools": onnxmltools.__version__, "onnxruntime": ort.__version__},
    }
    manifest = {
        "feature_schema_hash": meta["feature_schema_hash"],
        "features": names,
        "members": [{"name": "xgboost", "file": "xgboost.onnx", "weight": 0.5},
                    {"name": "catboost", "file": "catboost.onnx", "weight": 0.5}],
    }
    (args.out / "model.json").write_text(json.dumps(manifest, indent=1) + "\n")
    (args.out / "model_card.json").write_text(json.dumps(card, indent=1) + "\n")
    lines = ["# Model card: decide ensemble (XGBoost + CatBoost, ONNX)", "",
             f"- feature schema hash: `{card['feature_schema_hash']}` ({len(names)} features, docs/features.md)",
             f"- input: `{json.dumps(card['input'])}`",
             f"- train windows: {card['windows']['train'][2]} ({card['windows']['train'][0]} .. {card['windows']['train'][1]}), rows {card['rows']['train']}",
             f"- validation windows: {card['windows']['validation'][2]} ({card['windows']['validation'][0]} .. {card['windows']['validation'][1]}), rows {card['rows']['validation']}",
             f"- params: {json.dumps(card['params'])}",
             f"- ONNX vs Python max |Δp|: {json.dumps(diff)}",
             f"- versions: {json.dumps(card['versions'])}", "",
             "| model | log loss | Brier | AUC |", "|---|---|---|---|"]
    for k, v in card["validation"].items():
        auc = "n/a" if v["auc"] is None else f"{v['auc']:.4f}"
        lines.append(f"| {k} | {v['log_loss']:.4f} | {v['brier']:.4f} | {auc} |")
    lines += ["", "Calibration of the ensemble (validation):", "", "| bin | rows | mean predicted | observed Up rate |",
              "|---|---|---|---|"]
    for b in card["validation"]["ensemble"]["calibration"]:
        lines.append(f"| {b['bin']} | {b['rows']} | {b['mean_predicted']:.3f} | {b['observed_up_rate']:.3f} |")
    (args.out / "MODEL_CARD.md").write_text("\n".join(lines) + "\n")
    shutil.rmtree(work, ignore_errors=True)
    print(json.dumps({k: {m: round(v[m], 5) for m in ("log_loss", "brier")} for k, v in card["validation"].items()}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
