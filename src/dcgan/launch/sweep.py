"""Hydra sweeps: job directories named by their overrides, and a summary table of the sweep."""

import csv
import json
import math
import sys
from pathlib import Path
from typing import Any

from hydra.core.override_parser.overrides_parser import OverridesParser
from hydra.core.utils import JobReturn, JobStatus
from hydra.experimental.callback import Callback
from omegaconf import DictConfig

from dcgan.launch.job import rank

NAME_LENGTH = 100  # well under the 255 bytes a path component may have
PATH_KEYS = ("data.root", "data.cache_dir", "ckpt_path", "paths.")  # never part of a name
UNRANKED = "unranked.txt"  # in a job's directory: why its objective was not logged


def job_name(num: int, overrides: list[str], searched: dict | None) -> str:
    """'3_model.beta1=0.5,model.lr=0.0001': the job number and the values this job was given for
    the keys the sweep varies (its sweep overrides, and a search space such as Optuna's)."""
    swept = _swept_keys() | set(searched or ())
    items = [item for item in overrides if item.split("=", 1)[0].lstrip("+~") in swept]
    if not items:  # not started from a sweep's command line: name by every override instead
        items = [item for item in overrides if not item.lstrip("+~").startswith(PATH_KEYS)]
    name = f"{num}_{','.join(sorted(items))}".replace("/", "_").rstrip("_")
    return name if len(name) <= NAME_LENGTH else name[: NAME_LENGTH - 3] + "..."


def _swept_keys() -> set[str]:
    """Keys given sweep values (a,b or range(...)) on the command line that started the sweep,
    which is this process's own when the jobs run in it (Hydra's basic launcher)."""
    arguments = [a for a in sys.argv[1:] if "=" in a and not a.startswith("-")]
    try:
        overrides = OverridesParser.create().parse_overrides(arguments)
    except Exception:  # not a Hydra command line
        return set()
    return {override.key_or_group for override in overrides if override.is_sweep_override()}


class SweepSummary(Callback):
    """summary.csv and summary.md in the sweep directory: one row per job, its overrides and
    final metrics, best objective first; a failed job, or one whose objective was not logged
    (FID without its feature weights, say), gets a row that says why, last.

    Rewritten after every job: Hydra stops before on_multirun_end when a job has failed, and the
    other jobs' results must still be there.
    """

    def __init__(self, objective: str, direction: str = "minimize"):
        self.objective = objective
        self.direction = direction

    def on_job_end(self, config: DictConfig, job_return: JobReturn, **kwargs: Any) -> None:
        if config.hydra.mode.name != "MULTIRUN" or rank():  # a job's other ranks (SLURM's tasks): rank 0 writes
            return
        if job_return.status == JobStatus.FAILED:
            error = job_return._return_value  # the exception the job raised
            message = " ".join(f"{type(error).__name__}: {error}".split())
            Path(config.hydra.runtime.output_dir, "failed.txt").write_text(message + "\n")
        self.write(Path(config.hydra.sweep.dir))

    def on_multirun_end(self, config: DictConfig, **kwargs: Any) -> None:
        self.write(Path(config.hydra.sweep.dir))

    def write(self, sweep_dir: Path) -> None:
        rows = [row for job in sweep_dir.iterdir() if (row := self._row(job))]
        sign = 1 if self.direction == "minimize" else -1

        def rank(row: dict) -> tuple:
            value = row.get(self.objective)
            return (not isinstance(value, float) or math.isnan(value), sign * value if isinstance(value, float) else 0)

        rows.sort(key=rank)
        metrics = sorted({key for row in rows for key in row} - {"job", "status", "overrides", "error"})
        columns = ["job", "status", "overrides", *metrics, "error"]
        with open(sweep_dir / "summary.csv", "w", newline="") as file:
            writer = csv.DictWriter(file, columns)
            writer.writeheader()
            writer.writerows(rows)
        unranked = sum(row["status"] == "unranked" for row in rows)
        note = f"; {unranked} not ranked, their {self.objective} was not logged (see error)" if unranked else ""
        lines = [f"Sweep {sweep_dir}: {len(rows)} jobs, best {self.objective} ({self.direction}) first{note}", "",
                 "| " + " | ".join(columns) + " |", "|" + " --- |" * len(columns)]
        lines += ["| " + " | ".join(_cell(row.get(column, "")) for column in columns) + " |" for row in rows]
        (sweep_dir / "summary.md").write_text("\n".join(lines) + "\n")

    @staticmethod
    def _row(job: Path) -> dict | None:
        overrides = job / ".hydra" / "overrides.yaml"
        if not overrides.exists():
            return None
        row = {"job": job.name, "overrides": " ".join(
            line[2:].strip() for line in overrides.read_text().splitlines() if line.startswith("- "))}
        if (job / "failed.txt").exists():
            return {**row, "status": "failed", "error": (job / "failed.txt").read_text().strip()}
        if (job / "metrics.json").exists():
            metrics = json.loads((job / "metrics.json").read_text())
            if (job / UNRANKED).exists():
                return {**row, "status": "unranked", **metrics, "error": (job / UNRANKED).read_text().strip()}
            return {**row, "status": "done", **metrics}
        return {**row, "status": "running"}


def _cell(value: Any) -> str:
    text = f"{value:.4g}" if isinstance(value, float) else str(value)
    return text.replace("|", "\\|")
