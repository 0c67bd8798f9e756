"""Where a short run's time goes outside the training loop: `python train.py` on the built-in
digits (cached on the device), as a user runs it, cut into its parts by timestamps taken in the
process itself and its imports as `python -X importtime` reports them.

    python benchmarks/dead_time.py [--epochs 2] [--batches 10] [--runs 3] [--accelerator cpu] [KEY=VALUE ...]

Parts, each the median of --runs processes: the imports (train.py's, Hydra's, Lightning's, wherever
they happen), start-up (Python's own, composing the config, building the data and the model), set-up
(callbacks, loggers, trainer, the start line, and the data's set-up: the cache's decoding or
mapping), the loop's set-up (optimizers, loaders, the first batch fetched), the first iteration, the loop's other iterations (training: not
dead time), the epoch ends (grids, quality metrics if asked for, checkpoints), the end of fit
(end-of-run figures, progress.gif, the last checkpoint), the end of train() (loggers' last flush,
metrics.json, the done line) and the process's exit. Everything else as a user gets it
(TensorBoard, grids, checkpoints, figures); KEY=VALUE options go to train.py as on its command line.
The digits are written to ./data as train.py does: a first run where there are none pays for that once.
"""

import argparse
import atexit
import json
import os
import re
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pytorch_lightning as pl

ROOT = Path(__file__).resolve().parents[1]
PARTS = ["imports", "start-up", "set-up", "loop set-up", "first iteration", "other iterations", "epoch ends",
         "end of fit", "end of train()", "process exit"]


class Stamps(pl.Callback):
    """Wall-clock times of the hooks that bound the parts, written to `path` as the process exits
    (an atexit handler: train.py runs them before it ends). Each is also marked on stderr, among
    -X importtime's lines, so that an import is counted in imports and not in the part it happened in."""

    def __init__(self, path: str):
        self.path = Path(path)
        self.stamps: dict[str, float] = {"created": self._mark()}
        self.batches: list[tuple[float, float]] = []  # (start, end) of each iteration
        atexit.register(self._write)

    @staticmethod
    def _mark() -> float:
        now = time.time()
        print(f"{MARK} {now!r}", file=sys.stderr, flush=True)
        return now

    def setup(self, trainer, pl_module, stage):
        self.stamps["setup"] = self._mark()

    def on_train_batch_start(self, trainer, pl_module, batch, batch_idx):
        self.batches.append((self._mark(), 0.0))

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx):
        self.batches[-1] = (self.batches[-1][0], self._mark())

    def on_train_end(self, trainer, pl_module):
        self.stamps["train end"] = self._mark()

    def _write(self):
        self.stamps["atexit"] = self._mark()
        self.path.write_text(json.dumps({"stamps": self.stamps, "batches": self.batches}))


MARK = "dead_time stamp"


def imports_after(stderr: str, launched: float) -> list[tuple[float, float]]:
    """(the last stamp before it, seconds) of each outermost import in -X importtime's report."""
    found, last = [], launched
    for line in stderr.splitlines():
        if line.startswith(MARK):
            last = float(line.split()[-1])
        elif outermost := re.match(r"import time:\s+\d+ \|\s+(\d+) \| \S", line):
            found.append((last, int(outermost.group(1)) / 1e6))
    return found


def parts(out: Path, launched: float, exited: float, stderr: str) -> dict[str, float]:
    inside = json.loads((out / "stamps.json").read_text())
    stamps, batches = inside["stamps"], inside["batches"]
    loop_end = batches[-1][1]

    def part(stamp: float) -> str:  # the part that the time from this stamp to the next belongs to
        bounds = [(stamps["created"], "start-up"), (stamps["setup"], "set-up"), (batches[0][0], "loop set-up"),
                  (batches[0][1], "first iteration")]
        if stamp < batches[0][1]:
            return next(name for bound, name in bounds if stamp < bound)
        if stamp < loop_end:
            return "other iterations" if any(start <= stamp < end for start, end in batches) else "epoch ends"
        return "end of fit" if stamp < stamps["train end"] else "end of train()" if stamp < stamps["atexit"] \
            else "process exit"

    spans = {
        "start-up": stamps["created"] - launched,  # the interpreter's start included
        "set-up": stamps["setup"] - stamps["created"],  # the data's set-up: before callbacks'
        "loop set-up": batches[0][0] - stamps["setup"],
        "first iteration": batches[0][1] - batches[0][0],
        "other iterations": sum(end - start for start, end in batches[1:]),
        "epoch ends": sum(batches[i + 1][0] - batches[i][1] for i in range(len(batches) - 1)),  # and loader waits
        "end of fit": stamps["train end"] - loop_end,
        "end of train()": stamps["atexit"] - stamps["train end"],
        "process exit": exited - stamps["atexit"],
    }
    measured = {"imports": 0.0, **spans}
    for stamp, seconds in imports_after(stderr, launched):
        measured[part(stamp)] -= seconds
        measured["imports"] += seconds
    return measured


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--epochs", type=int, default=2)
    parser.add_argument("--batches", type=int, default=10, help="iterations per epoch (trainer.limit_train_batches)")
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--accelerator", default="cpu", help="trainer.accelerator")
    args, overrides = parser.parse_known_args()
    options = [f"trainer.max_epochs={args.epochs}", f"trainer.limit_train_batches={args.batches}",
               f"trainer.accelerator={args.accelerator}", "callbacks.progress_bar.refresh_rate=0", *overrides]
    measured: list[dict[str, float]] = []
    for _ in range(args.runs):
        with tempfile.TemporaryDirectory() as folder:
            out = Path(folder)
            stamps = f"+callbacks.stamps={{_target_: dead_time.Stamps, path: '{out / 'stamps.json'}'}}"
            launched = time.time()
            done = subprocess.run([sys.executable, "-X", "importtime", str(ROOT / "train.py"),
                                   f"hydra.run.dir={out / 'run'}", stamps, *options], capture_output=True, text=True,
                                  env={**os.environ, "PYTHONPATH": str(ROOT / "benchmarks")}, cwd=ROOT, check=False)
            exited = time.time()
            if done.returncode:
                sys.exit(f"the run failed:\n{done.stderr[-3000:]}")
            measured.append(parts(out, launched, exited, done.stderr))
        whole, trained = sum(measured[-1].values()), measured[-1]["other iterations"]
        print(f"run {len(measured)}: {whole:.2f} s, of which imports {measured[-1]['imports']:.2f} s and the loop's "
              f"other iterations {trained:.2f} s", flush=True)  # what a cut run still reports
    print(f"{args.runs} runs of {args.epochs} epochs x {args.batches} iterations (python train.py "
          f"{' '.join(options)}), median s (min - max):")
    for part in PARTS:
        values = [m[part] for m in measured]
        print(f"  {part:18s} {statistics.median(values):7.2f}  ({min(values):.2f} - {max(values):.2f})")
    outside = [sum(m.values()) - m["other iterations"] - m["imports"] for m in measured]
    print(f"outside the loop, imports apart: {statistics.median(outside):.2f} s "
          f"({min(outside):.2f} - {max(outside):.2f}); whole: {statistics.median([sum(m.values()) for m in measured]):.2f} s")


if __name__ == "__main__":
    main()
