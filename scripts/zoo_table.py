#!/usr/bin/env python
"""Regenerate the model-zoo table (Markdown + CSV) from the run folders in ``model_zoo_logs/``.

Every published row is a folder ``model_zoo_logs/<task>/<row>/`` holding:

* ``command.txt``  -- the exact command that produced it;
* ``config.json``  -- the resolved configuration (``scripts.common.dump_config``);
* ``log.jsonl``    -- the full JSON-lines log (plus ``stdout.txt`` / ``stderr.txt`` when captured);
* ``metrics.json`` -- final numbers: task metrics (``top1``/``top5`` in percent, ``bleu`` ...),
  ``model``, ``dataset``, ``hardware``, ``wall_time_s``, ``num_params``, ``sha256``;
* ``weights.sha256`` -- ``<sha256>  <file name>`` of the weights (the file itself too when under 3 MiB).

The table is never typed by hand::

    python scripts/zoo_table.py            # write model_zoo_logs/MODEL_ZOO.md and .csv
    python scripts/zoo_table.py --check    # exit 1 if the committed table or any row disagrees with its logs

Consistency checks of ``--check``: the required files exist; ``weights.sha256``
equals ``metrics.json``'s ``sha256`` and the weights file when committed; for
every metric ``m`` of ``metrics.json``, the last ``"kind": "epoch"`` record of
``log.jsonl`` holding ``val_<m>`` agrees (to 0.01); the committed Markdown and
CSV equal what this script generates.
"""
from __future__ import annotations

import argparse
import csv
import hashlib
import io
import json
import sys
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
REQUIRED = ("command.txt", "config.json", "log.jsonl", "metrics.json", "weights.sha256")
# Keys of metrics.json that describe the run rather than score it.
NON_METRICS = {"model", "dataset", "hardware", "wall_time_s", "num_params", "sha256", "weights", "epochs",
               "kwargs", "samples", "steps", "notes"}
# Preferred column order of known metrics; other numeric keys follow alphabetically.
METRIC_ORDER = ["top1", "top5", "pixAcc", "mIoU", "ss_pixAcc", "ss_mIoU", "ms_pixAcc", "ms_mIoU", "bleu", "sacrebleu",
                "ppl", "em", "f1", "accuracy", "mcc", "loss"]
WEIGHTS_COMMIT_LIMIT = 3 * 1024 * 1024  # bytes; larger weight files are published by sha256 only
TABLE_MD = "MODEL_ZOO.md"
TABLE_CSV = "MODEL_ZOO.csv"


class ZooTableError(ValueError):
    """A row folder is incomplete or its files disagree."""


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def read_row(folder: Path) -> dict[str, Any]:
    """Read one row folder; raise :class:`ZooTableError` when incomplete or inconsistent."""
    missing = [f for f in REQUIRED if not (folder / f).is_file()]
    if missing:
        raise ZooTableError(f"{folder}: missing {', '.join(missing)}")
    try:
        metrics = json.loads((folder / "metrics.json").read_text())
    except json.JSONDecodeError as err:
        raise ZooTableError(f"{folder}/metrics.json is not valid JSON: {err}") from err
    for key in ("model", "dataset", "hardware", "wall_time_s"):
        if key not in metrics:
            raise ZooTableError(f"{folder}/metrics.json lacks {key!r}")
    sha_line = (folder / "weights.sha256").read_text().split()
    if not sha_line:
        raise ZooTableError(f"{folder}/weights.sha256 is empty")
    sha = sha_line[0]
    if metrics.get("sha256") and metrics["sha256"] != sha:
        raise ZooTableError(f"{folder}: weights.sha256 {sha[:12]}... differs from metrics.json {metrics['sha256'][:12]}...")
    weights_name = sha_line[1] if len(sha_line) > 1 else metrics.get("weights")
    weights_file = folder / weights_name if weights_name else None
    present = bool(weights_file and weights_file.is_file())
    if present and _sha256(weights_file) != sha:
        raise ZooTableError(f"{weights_file}: sha256 does not match weights.sha256")
    records = []
    for i, line in enumerate((folder / "log.jsonl").read_text().splitlines(), 1):
        if line.strip():
            try:
                records.append(json.loads(line))
            except json.JSONDecodeError as err:
                raise ZooTableError(f"{folder}/log.jsonl:{i}: not valid JSON") from err
    scores = {k: v for k, v in metrics.items() if k not in NON_METRICS and isinstance(v, (int, float))}
    epochs = [r for r in records if r.get("kind") == "epoch"]
    for key, value in scores.items():
        logged = [r[f"val_{key}"] for r in epochs if r.get(f"val_{key}") is not None]
        if logged and abs(float(logged[-1]) - float(value)) > 0.01 + 1e-9:
            raise ZooTableError(f"{folder}: metrics.json {key}={value} but the log's last epoch says {logged[-1]:.4f}")
    # Only small weight files are committed (and linked); bigger ones may sit in a local checkout.
    committed = present and weights_file.stat().st_size <= WEIGHTS_COMMIT_LIMIT
    return {"folder": folder, "metrics": metrics, "scores": scores, "sha256": sha,
            "weights_committed": committed, "weights_name": weights_name}


def collect(logs: Path) -> dict[str, list[dict[str, Any]]]:
    """All rows by task: ``{task: [row, ...]}`` sorted by row name."""
    tasks: dict[str, list[dict[str, Any]]] = {}
    for metrics in sorted(logs.glob("*/*/metrics.json")):
        folder = metrics.parent
        tasks.setdefault(folder.parent.name, []).append(read_row(folder))
    return tasks


def _metric_columns(rows: list[dict[str, Any]]) -> list[str]:
    keys = {k for r in rows for k in r["scores"]}
    return [k for k in METRIC_ORDER if k in keys] + sorted(keys - set(METRIC_ORDER))


def _fmt(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:.2f}"
    return str(value)


def _wall(seconds: float) -> str:
    seconds = float(seconds)
    if seconds < 120:
        return f"{seconds:.0f} s"
    if seconds < 7200:
        return f"{seconds / 60:.1f} min"
    return f"{seconds / 3600:.2f} h"


def render(tasks: dict[str, list[dict[str, Any]]], logs: Path) -> tuple[str, str]:
    """The Markdown and CSV texts of the table."""
    md = ["# Model zoo", "",
          "Generated by `python scripts/zoo_table.py` from the run folders below; do not edit by hand.",
          "Every row links to its folder: exact command, resolved config, full log, metrics and weights sha256.", ""]
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    all_metrics = sorted({k for rows in tasks.values() for r in rows for k in r["scores"]},
                         key=lambda k: (METRIC_ORDER.index(k) if k in METRIC_ORDER else len(METRIC_ORDER), k))
    writer.writerow(["task", "row", "model", "dataset", *all_metrics, "num_params", "epochs", "hardware",
                     "wall_time_s", "sha256", "weights_file"])
    for task, rows in sorted(tasks.items()):
        cols = _metric_columns(rows)
        md += [f"## {task}", "",
               "| Row | Model | Dataset | " + " | ".join(cols) + " | Params | Epochs | Hardware | Wall time | Weights |",
               "|" + "---|" * (8 + len(cols))]
        for r in rows:
            m = r["metrics"]
            folder = r["folder"].relative_to(logs).as_posix()
            weights = f"`{r['sha256'][:8]}`" + (f" ([file]({folder}/{r['weights_name']}))" if r["weights_committed"] else "")
            params = f"{m['num_params'] / 1e6:.2f}M" if isinstance(m.get("num_params"), (int, float)) else ""
            md.append(f"| [{r['folder'].name}]({folder}/) | {m['model']} | {m['dataset']} | "
                      + " | ".join(_fmt(r["scores"].get(c, "")) for c in cols)
                      + f" | {params} | {m.get('epochs', '')} | {m['hardware']} | {_wall(m['wall_time_s'])} | {weights} |")
            writer.writerow([task, r["folder"].name, m["model"], m["dataset"],
                             *[_fmt(r["scores"][k]) if k in r["scores"] else "" for k in all_metrics],
                             m.get("num_params", ""), m.get("epochs", ""), m["hardware"], m["wall_time_s"],
                             r["sha256"], r["weights_name"] if r["weights_committed"] else ""])
        md.append("")
    return "\n".join(md), out.getvalue()


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--logs", default=str(ROOT / "model_zoo_logs"), help="the model_zoo_logs folder")
    p.add_argument("--check", action="store_true", help="verify instead of writing; exit 1 on any disagreement")
    args = p.parse_args(argv)
    logs = Path(args.logs)
    try:
        md, csv_text = render(collect(logs), logs)
    except ZooTableError as err:
        print(f"zoo table: {err}", file=sys.stderr)
        return 1
    md_path, csv_path = logs / TABLE_MD, logs / TABLE_CSV
    if args.check:
        stale = [p.name for p, text in ((md_path, md), (csv_path, csv_text))
                 if not p.is_file() or p.read_text() != text]
        if stale:
            print(f"zoo table: {', '.join(stale)} disagree with the logs; run python scripts/zoo_table.py",
                  file=sys.stderr)
            return 1
        print("zoo table: up to date")
        return 0
    md_path.write_text(md)
    csv_path.write_text(csv_text)
    print(f"wrote {md_path} and {csv_path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
