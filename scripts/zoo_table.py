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

Consistency checks (``--check``, and any run): every folder ``<task>/<row>/`` is a
row and must pass, none is skipped. The required files exist; ``config.json``
was written by the run (its ``env.command`` is in ``command.txt``, its model,
dataset and hardware are ``metrics.json``'s, and its git commit, when this
checkout knows it, holds the script that ran); ``weights.sha256`` equals
``metrics.json``'s ``sha256`` and the weights file when committed; every number
of ``metrics.json`` is backed by the log: the run's ``"kind": "final"`` record,
else the last ``eval`` record, else the last ``epoch`` record holding
``val_<metric>`` (to 0.01 for floats); ``epochs`` may also be backed by the
epoch records, ``num_params`` by ``config.json`` and ``wall_time_s`` by the log's
timestamps. A number nothing backs fails the row. The committed Markdown and CSV
equal what this script generates.

The table also lists weights that ``get_model`` converts from torchvision and
Hugging Face, with the numbers *they* publish (torchvision's weights metadata),
marked as such; ``--no-converted`` leaves them out.

``--release-assets DIR`` copies every row's weights into ``DIR`` as
``<model>-<tag>.safetensors`` with ``SHA256SUMS``: the flat layout that
``TOOLKIT_REPO`` serves (see ``model_zoo_logs/README.md``).
"""
from __future__ import annotations

import argparse
import csv
import hashlib
import io
import json
import re
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
REQUIRED = ("command.txt", "config.json", "log.jsonl", "metrics.json", "weights.sha256")
# Keys of metrics.json that describe the run rather than score it.
NON_METRICS = {"model", "dataset", "hardware", "wall_time_s", "num_params", "sha256", "weights", "epochs",
               "kwargs", "samples", "steps", "notes"}
# Keys of metrics.json that hold no number to check.
NOT_NUMBERS = {"model", "dataset", "hardware", "sha256", "weights", "kwargs", "notes"}
# Scores rounded to two decimals in metrics.json.
SCORE_TOLERANT = {"top1", "top5", "bleu", "sacrebleu", "ppl", "perplexity", "em", "f1", "accuracy", "mcc", "loss"}
# Preferred column order of known metrics; other numeric keys follow alphabetically.
METRIC_ORDER = ["top1", "top5", "voc07_map", "coco_map", "pixAcc", "mIoU", "ss_pixAcc", "ss_mIoU", "ms_pixAcc", "ms_mIoU", "bleu", "sacrebleu",
                "ppl", "em", "f1", "accuracy", "mcc", "loss"]
# bytes; larger weight files are published by sha256 only. 64 MiB admits the mobile rows (LR-ASPP 12.9 MB, SSD-128
# 18.3 MB) and the ResNet-18 FCN (48.3 MB): a row whose weights live only on the machine that trained them is lost
# with it (stop 20's LR-ASPP run was), and these machines keep no home folder between sessions.
WEIGHTS_COMMIT_LIMIT = 64 * 1024 * 1024
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


def _check_provenance(folder: Path, metrics: dict[str, Any]) -> dict[str, Any]:
    """config.json is the run's own: same command as command.txt, same model, dataset and hardware."""
    try:
        config = json.loads((folder / "config.json").read_text())
    except json.JSONDecodeError as err:
        raise ZooTableError(f"{folder}/config.json is not valid JSON: {err}") from err
    env, args = config.get("env") or {}, config.get("args") or {}
    if not env.get("command"):
        raise ZooTableError(f"{folder}/config.json has no env.command: not written by scripts.common.dump_config")
    commands = [_strip_env(line) for line in (folder / "command.txt").read_text().splitlines() if line.strip()]
    if _strip_env(env["command"]) not in commands:
        raise ZooTableError(f"{folder}: config.json's command is not in command.txt")
    for key, value in (("model", args.get("model")), ("dataset", args.get("dataset")),
                       ("hardware", env.get("hardware"))):
        if value is not None and str(metrics[key]).lower() not in _run_names(key, value, args):
            raise ZooTableError(f"{folder}: metrics.json {key}={metrics[key]!r} but config.json says {value!r}")
    script = next((t for t in _strip_env(env["command"]).split() if t.endswith(".py")), None)
    commit = env.get("git_commit")
    if script and commit and _git_has(commit):
        if not _git_has(f"{commit}:{script}"):
            raise ZooTableError(f"{folder}: config.json's commit {commit[:12]} has no {script}: not the code that ran")
    return config


def _run_names(key: str, value: Any, args: dict[str, Any]) -> set[str]:
    """What metrics.json may call ``key`` given the run's flag ``value`` (lower case).

    GluonCV's segmentation script takes the family as ``--model`` (``fcn``) and
    names the trained model ``<model>_<backbone>_<dataset>``: both are the run's.
    """
    names = {str(value).lower()}
    if key == "model" and args.get("backbone") and args.get("dataset"):
        names.add(f"{value}_{args['backbone']}_{args['dataset']}".lower())
    return names


def _strip_env(command: str) -> str:
    """A command without leading ``VAR=value`` assignments and with ``python3`` as ``python``."""
    words = command.split()
    while words and "=" in words[0] and not words[0].startswith("-"):
        words.pop(0)
    if words and words[0] in ("python3", sys.executable):
        words[0] = "python"
    return " ".join(words)


def _git_has(obj: str) -> bool:
    """Whether this checkout's git knows ``obj`` (False without git or outside a checkout)."""
    try:
        return subprocess.run(["git", "-C", str(ROOT), "cat-file", "-e", obj], capture_output=True).returncode == 0
    except OSError:
        return False


def _logged(records: list[dict[str, Any]], key: str) -> tuple[Any, str] | None:
    """The value of ``key`` that the log backs, and the record it comes from.

    A ``final`` record (the run's own summary) wins; otherwise the last
    ``eval`` record holding ``key`` (or ``val_<key>``), else the last ``epoch``
    record holding ``val_<key>``.
    """
    names = {"final": (key,), "eval": (key, f"val_{key}"), "epoch": (f"val_{key}",)}
    best: dict[str, tuple[Any, str]] = {}
    for i, r in enumerate(records, 1):
        for name in names.get(r.get("kind"), ()):
            if r.get(name) is not None:
                best[r["kind"]] = (r[name], f"{r['kind']} record (line {i})")
                break
    return best.get("final") or best.get("eval") or best.get("epoch")


def _resume_epochs(folder: Path) -> list[int]:
    """Epochs a run was resumed at: the training scripts keep the config of the process before each resume as
    ``config-before-resume-epoch<N>.json``."""
    found = (re.fullmatch(r"config-before-resume-epoch(\d+)\.json", f.name) for f in folder.iterdir())
    return sorted(int(m.group(1)) for m in found if m)


def _steps_back(prev: dict[str, Any], r: dict[str, Any]) -> bool:
    """Whether ``r`` repeats a step: a process's epoch record shares its last step with the train record before it."""
    return int(r["step"]) < int(prev["step"]) or (int(r["step"]) == int(prev["step"]) and r.get("kind") == prev.get("kind"))


def _process_segments(records: list[dict[str, Any]], resumes: list[int]) -> list[list[dict[str, Any]]]:
    """The log split into the records of each process of a resumed run.

    A new process starts where the epoch reaches a resume epoch or the step stops advancing. A process
    that stopped mid-epoch ends at its last ``epoch`` record: the steps after it were not checkpointed,
    the next process repeated them, and the run's wall time does not count them.
    """
    segments: list[list[dict[str, Any]]] = [[]]
    for r in records:
        prev = segments[-1][-1] if segments[-1] else None
        if prev is not None and (
                any(int(prev.get("epoch", 0)) < n <= int(r.get("epoch", 0)) for n in resumes)
                or ("step" in r and "step" in prev and _steps_back(prev, r))):
            segments.append([])
        segments[-1].append(r)
    kept = []
    for seg in segments[:-1]:
        ends = [j for j, r in enumerate(seg) if r.get("kind") == "epoch"]
        if ends:
            kept.append(seg[:ends[-1] + 1])
    return kept + segments[-1:]


def _check_against_log(folder: Path, metrics: dict[str, Any], config: dict[str, Any],
                       records: list[dict[str, Any]]) -> None:
    """Every number of metrics.json agrees with the run's log (or its config); raise otherwise."""
    epochs = [r for r in records if r.get("kind") == "epoch"]
    for key, value in metrics.items():
        if key in NOT_NUMBERS or isinstance(value, (str, dict, list)) or value is None:
            continue
        logged = _logged(records, key)
        if logged is not None:
            got, where = logged
            tol = 0.01 + 1e-9 if key in SCORE_TOLERANT or isinstance(value, float) else 0
            if abs(float(got) - float(value)) > tol:
                raise ZooTableError(f"{folder}: metrics.json {key}={value} but the log's {where} says {float(got):.4f}")
            continue
        if key == "epochs" and epochs:
            last = max(int(r.get("epoch", -1)) for r in epochs) + 1
            if last != value:
                raise ZooTableError(f"{folder}: metrics.json epochs={value} but the log has {last} epoch records")
            continue
        if key == "num_params" and config.get("num_params") is not None:
            if int(config["num_params"]) != value:
                raise ZooTableError(f"{folder}: metrics.json num_params={value} but config.json says {config['num_params']}")
            continue
        if key == "wall_time_s" and records and all("time" in r for r in records):
            # Without a final record: the logged span of each process (a resumed run counts none of the time
            # between them), plus at most one epoch before each process's first record and a minute for
            # loading, evaluation and saving, must cover the wall time.
            segments = _process_segments(records, _resume_epochs(folder))
            span = sum(seg[-1]["time"] - seg[0]["time"] for seg in segments)
            first = float(epochs[0].get("epoch_time_s", 0.0)) if epochs else 0.0
            if not span - 1 <= float(value) <= span + len(segments) * (first + 60):
                raise ZooTableError(f"{folder}: metrics.json wall_time_s={value} but the log spans {span:.0f}s"
                                    + (f" in {len(segments)} processes" if len(segments) > 1 else ""))
            continue
        raise ZooTableError(f"{folder}: metrics.json {key}={value} is in no final, eval or epoch record of "
                            "log.jsonl (nor config.json): it cannot be checked")


def read_row(folder: Path) -> dict[str, Any]:
    """Read one row folder; raise :class:`ZooTableError` when incomplete, inconsistent or uncheckable."""
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
    config = _check_provenance(folder, metrics)
    scores = {k: v for k, v in metrics.items() if k not in NON_METRICS and isinstance(v, (int, float))}
    if not scores:
        raise ZooTableError(f"{folder}/metrics.json has no score (top1, bleu ...) to publish")
    _check_against_log(folder, metrics, config, records)
    # Only small weight files are committed (and linked); bigger ones may sit in a local checkout.
    committed = present and weights_file.stat().st_size <= WEIGHTS_COMMIT_LIMIT
    return {"folder": folder, "metrics": metrics, "scores": scores, "sha256": sha,
            "weights_committed": committed, "weights_name": weights_name, "weights_present": present}


def collect(logs: Path) -> dict[str, list[dict[str, Any]]]:
    """All rows by task: ``{task: [row, ...]}`` sorted by row name.

    Every folder ``<logs>/<task>/<row>/`` is a row: one that cannot be read or
    checked is an error, never skipped.
    """
    tasks: dict[str, list[dict[str, Any]]] = {}
    for folder in sorted(p for p in logs.glob("*/*") if p.is_dir() and not p.name.startswith(".")):
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


def render(tasks: dict[str, list[dict[str, Any]]], logs: Path, converted: bool = True) -> tuple[str, str]:
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
    if converted:
        md += _converted_section()
    return "\n".join(md), out.getvalue()


def _converted_section() -> list[str]:
    """Weights published by other projects that ``get_model`` converts on first use, with *their* numbers."""
    if str(ROOT) not in sys.path:
        sys.path.insert(0, str(ROOT))
    from toolkit.zoo import get_entry, list_models

    lines: list[str] = []
    for kind in ("torchvision", "huggingface"):
        rows = []
        for name in list_models():
            src = get_entry(name).sources.get(kind)
            if src is not None and src.catalog is not None:
                rows += [(name, r) for r in src.catalog(name)]
        if not rows:
            continue
        if kind == "torchvision":
            lines += ["## Converted from torchvision (numbers published by torchvision, not measured here)", "",
                      "`get_model(name, pretrained=...)` converts torchvision's weights (its own cache, `$TORCH_HOME`) "
                      "and checks the outputs against torchvision's model. The numbers are torchvision's "
                      "`weights.meta[\"_metrics\"]`, copied as published from the installed torchvision package.", ""]
            by_task: dict[str, list] = {}
            for name, r in rows:
                by_task.setdefault(get_entry(name).task or "other", []).append((name, r))
            for task, task_rows in sorted(by_task.items()):
                # one column per metric the source publishes for this task (top1/top5, box mAP ...)
                keys = list(dict.fromkeys(k for _, r in task_rows for k in r["metrics"]))
                lines += [f"### {task}", "",
                          "| Model | pretrained= | Dataset | " + " | ".join(f"{k} (torchvision)" for k in keys)
                          + " | Params |", "|" + "---|" * (4 + len(keys))]
                for name, r in task_rows:
                    flag = f"`{r['pretrained']}`" + (" (`torchvision`, DEFAULT)" if r["default"] else "")
                    params = f"{r['num_params'] / 1e6:.2f}M" if r.get("num_params") else ""
                    lines.append(f"| {name} | {flag} | {r['dataset']} | "
                                 + " | ".join(str(r["metrics"].get(k, "")) for k in keys) + f" | {params} |")
                lines.append("")
            continue
        else:
            lines += ["## Converted from Hugging Face checkpoints (no accuracy published with them)", "",
                      "`get_model(name, pretrained=\"<id>\")` converts a BERT checkpoint from the Hugging Face "
                      "cache (`$HF_HOME`); any BERT id whose sizes match the zoo config loads. Defaults:", "",
                      "| Model | pretrained= (DEFAULT) |", "|---|---|"]
            lines += [f"| {name} | `{r['pretrained']}` |" for name, r in rows]
        lines.append("")
    return lines


def release_assets(tasks: dict[str, list[dict[str, Any]]], out: Path) -> list[Path]:
    """Copy every row's weights to ``out`` under the store's names: the layout ``$TOOLKIT_REPO`` serves.

    A release uploads these files (and ``SHA256SUMS``) as its assets; users set
    ``TOOLKIT_REPO`` to the release's download URL. Rows whose weights file is
    not in this checkout are an error: a release must not miss one.
    """
    out.mkdir(parents=True, exist_ok=True)
    written, sums = [], []
    for rows in tasks.values():
        for r in rows:
            if not r["weights_present"]:
                raise ZooTableError(f"{r['folder']}: weights file {r['weights_name']} is not in this checkout")
            name = f"{r['metrics']['model'].lower()}-{r['sha256'][:8]}.safetensors"
            shutil.copyfile(r["folder"] / r["weights_name"], out / name)
            written.append(out / name)
            sums.append(f"{r['sha256']}  {name}")
    (out / "SHA256SUMS").write_text("".join(line + "\n" for line in sorted(sums)))
    return written


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--logs", default=str(ROOT / "model_zoo_logs"), help="the model_zoo_logs folder")
    p.add_argument("--check", action="store_true", help="verify instead of writing; exit 1 on any disagreement")
    p.add_argument("--release-assets", metavar="DIR", default=None,
                   help="copy every row's weights into DIR as NAME-TAG.safetensors (+ SHA256SUMS), the layout "
                        "TOOLKIT_REPO serves")
    p.add_argument("--no-converted", action="store_true",
                   help="leave out the sections of weights converted from torchvision / Hugging Face")
    args = p.parse_args(argv)
    logs = Path(args.logs)
    try:
        tasks = collect(logs)
        if args.release_assets:
            files = release_assets(tasks, Path(args.release_assets))
            print(f"wrote {len(files)} weight files and SHA256SUMS to {args.release_assets}")
            return 0
        md, csv_text = render(tasks, logs, converted=not args.no_converted)
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
