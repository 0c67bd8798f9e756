"""Where a short run's time goes outside the training loop: a whole train.py process on the built-in
digits (cached on the device), cut into its parts by timestamps taken in the process itself.

    python benchmarks/dead_time.py [--epochs 2] [--batches 10] [--runs 3] [KEY=VALUE ...]

Parts, each the median of --runs processes: Python and the imports (train.py's and Lightning's),
composing the config, building data, model, callbacks and trainer (the start line included), the
set-up inside fit (data set-up, the cache's decoding or mapping and copy), the first iteration,
the loop's other iterations (training: not dead time), the epoch ends (grids, quality metrics if
asked for, checkpoints), the end of fit and of train() (end-of-run figures, progress.gif, loggers'
last flush, metrics.json), and the process's exit. Everything else as a user gets it (TensorBoard,
grids, checkpoints, figures); KEY=VALUE options go to train.py as on its command line. The digits
are written to ./data as train.py does: a first run where there are none pays for that once.
"""

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pytorch_lightning as pl

ROOT = Path(__file__).resolve().parents[1]
PARTS = ["imports", "config", "build", "fit set-up", "first iteration", "other iterations", "epoch ends",
         "end of fit", "end of train()", "process exit"]


class Stamps(pl.Callback):
    """Wall-clock times of the hooks that bound the parts, written to `path` as training ends."""

    def __init__(self, path: str):
        self.path = Path(path)
        self.stamps: dict[str, float] = {"setup": time.time()}
        self.batches: list[tuple[float, float]] = []  # (start, end) of each iteration

    def on_train_start(self, trainer, pl_module):
        self.stamps["train start"] = time.time()

    def on_train_batch_start(self, trainer, pl_module, batch, batch_idx):
        self.batches.append((time.time(), 0.0))

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx):
        self.batches[-1] = (self.batches[-1][0], time.time())

    def on_train_end(self, trainer, pl_module):
        self.stamps["train end"] = time.time()
        self.path.write_text(json.dumps({"stamps": self.stamps, "batches": self.batches}))


def child(out: Path, overrides: list[str]) -> None:
    """One run, timed from inside: imports, compose, train()."""
    started = time.time()
    sys.path.insert(0, str(ROOT))
    from hydra import compose, initialize_config_dir

    from train import train

    imported = time.time()
    with initialize_config_dir(config_dir=str(ROOT / "conf"), version_base="1.3"):
        cfg = compose("config", [f"paths.output_dir={out / 'run'}",
                                 f"+callbacks.stamps={{_target_: dead_time.Stamps, path: '{out / 'stamps.json'}'}}",
                                 *overrides])
    composed = time.time()
    train(cfg)
    returned = time.time()
    (out / "child.json").write_text(json.dumps({"started": started, "imported": imported, "composed": composed,
                                                "returned": returned}))


def parts(out: Path, launched: float, exited: float) -> dict[str, float]:
    run, inside = json.loads((out / "child.json").read_text()), json.loads((out / "stamps.json").read_text())
    stamps, batches = inside["stamps"], inside["batches"]
    loop_end = batches[-1][1]
    iterations = sum(end - start for start, end in batches[1:])
    between = sum(batches[i + 1][0] - batches[i][1] for i in range(len(batches) - 1))  # epoch ends, loader waits
    return {
        "imports": run["imported"] - launched,  # the interpreter's start included
        "config": run["composed"] - run["imported"],
        "build": stamps["setup"] - run["composed"],
        "fit set-up": stamps["train start"] - stamps["setup"] + batches[0][0] - stamps["train start"],
        "first iteration": batches[0][1] - batches[0][0],
        "other iterations": iterations,
        "epoch ends": between,
        "end of fit": stamps["train end"] - loop_end,
        "end of train()": run["returned"] - stamps["train end"],
        "process exit": exited - run["returned"],
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--epochs", type=int, default=2)
    parser.add_argument("--batches", type=int, default=10, help="iterations per epoch (trainer.limit_train_batches)")
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--child", type=Path, help=argparse.SUPPRESS)
    args, overrides = parser.parse_known_args()
    if args.child:
        child(args.child, overrides)
        return
    options = [f"trainer.max_epochs={args.epochs}", f"trainer.limit_train_batches={args.batches}",
               "trainer.accelerator=cpu", "callbacks.progress_bar.refresh_rate=0", *overrides]
    measured: list[dict[str, float]] = []
    for _ in range(args.runs):
        with tempfile.TemporaryDirectory() as folder:
            out = Path(folder)
            launched = time.time()
            done = subprocess.run([sys.executable, __file__, "--child", str(out), *options], capture_output=True,
                                  text=True, env={**os.environ, "PYTHONPATH": str(ROOT / "benchmarks")},
                                  check=False)
            exited = time.time()
            if done.returncode:
                sys.exit(f"the run failed:\n{done.stderr[-3000:]}")
            measured.append(parts(out, launched, exited))
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
