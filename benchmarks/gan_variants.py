"""The GAN variants on the built-in digits: every conf/model/ preset beside the seed's plain PyTorch
loop and the template's default, at the same number of G updates and at the same wall-clock budget.

For each setup and budget, over seeds: the Frechet distance between 1,000 generated digits and the
real ones in the digit classifier's features (FD, lower is better: median, and the range over
seeds), class coverage (digits that make up at least 2% of the samples, of 10: median), and
seconds per iteration (one G update and the n_critic D updates before it). Everything else is the
digits preset: 32x32 greyscale, batch 64, ngf = ndf = 32, nz = 100, CPU, fp32.

    python benchmarks/gan_variants.py [--iterations 500] [--seconds 30] [--seeds 5] [--preset-seeds 3]
                                      [--setups dcgan r1]
"""

import argparse
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path

import pytorch_lightning as pl
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # train.py lives at the top of the repository

from quality import compose_train_config, digits, quality  # noqa: E402

from dcgan.model.checkpoints import from_checkpoint  # noqa: E402
from dcgan.model.sampling import sampling_mode  # noqa: E402
from tutorial_loop import seed_loop  # noqa: E402
from train import train  # noqa: E402

PRESETS = ["dcgan", "wgan_gp", "sngan", "lsgan", "r1"]  # conf/model/; dcgan is the template's default


class Clock(pl.Callback):
    """Writes the training time (from the first iteration on, setup excluded) and the iterations
    done to a JSON file."""

    def __init__(self, path: str):
        self.path = Path(path)

    def on_train_start(self, trainer, pl_module):
        self.start = time.perf_counter()

    def on_train_end(self, trainer, pl_module):
        self.path.write_text(json.dumps({"seconds": time.perf_counter() - self.start, "iterations": pl_module.iteration}))


def template(preset: str, seed: int, root: Path, out: Path, iterations: int | None, seconds: float | None,
             extra: tuple[str, ...] = ()):
    """train.py's digits setup with model=<preset> (and `extra` overrides), for `iterations` G
    updates or `seconds`: the trained model, seconds per iteration, iterations done."""
    n_critic = compose_train_config([f"model={preset}", f"data.root={root}"]).model.n_critic
    minutes, rest = divmod(round(seconds or 0), 60)
    budget = ([f"+trainer.max_steps={(n_critic + 1) * iterations}"] if iterations else []) + (
        [f"+trainer.max_time='00:00:{minutes:02d}:{rest:02d}'"] if seconds else [])  # DD:HH:MM:SS
    train(compose_train_config([
        f"model={preset}", f"data.root={root}", f"paths.output_dir={out}", f"seed={seed}", *budget,
        *(["trainer.max_epochs=100000"] if iterations or seconds else []), "~callbacks.quality", "~callbacks.image_grids", "~callbacks.figures",
        "~callbacks.hparams", "callbacks.progress_bar.refresh_rate=0", "callbacks.checkpoints.every_n_epochs=0",
        "callbacks.checkpoints.monitor=null", "+trainer.enable_model_summary=false",
        f"+callbacks.clock={{_target_: gan_variants.Clock, path: '{out / 'clock.json'}'}}", *extra]))
    clock = json.loads((out / "clock.json").read_text())
    return from_checkpoint(out / "checkpoints" / "last.ckpt"), clock["seconds"] / clock["iterations"], clock["iterations"]


def plain_loop(images: torch.Tensor, seed: int, iterations: int | None, seconds: float | None):
    """The tutorial's loop (benchmarks/tutorial_loop.py) on the same images, batch and networks."""
    setup = argparse.Namespace(accelerator="cpu", width=32, image_size=32, batch_size=64, warmup=0, cudnn_benchmark=False)
    start = time.perf_counter()
    rate, net_g = seed_loop(setup, images, "32-true", epochs=None, seed=seed, iterations=iterations, seconds=seconds)
    per_iteration = 64 / rate
    done = iterations or round((time.perf_counter() - start) / per_iteration)

    def sample(z, net=net_g):
        with sampling_mode(net):  # the seed samples G in training mode, like this
            return net(z)

    return sample, per_iteration, done


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--iterations", type=int, default=500, help="G updates per run in the first budget")
    parser.add_argument("--seconds", type=float, default=30.0, help="training seconds per run in the second")
    parser.add_argument("--seeds", type=int, default=5, help="seeds for the plain loop and the default")
    parser.add_argument("--preset-seeds", type=int, default=3, help="seeds for each other preset")
    parser.add_argument("--samples", type=int, default=1000)
    parser.add_argument("--setups", nargs="+", default=["seed loop (tutorial)", *PRESETS],
                        help="which to run: 'seed loop (tutorial)' and the presets, e.g. --setups r1")
    args = parser.parse_args()

    with tempfile.TemporaryDirectory() as tmp:
        root, classifier, images, real_features = digits(Path(tmp))
        print(f"digit classifier: {float(classifier.holdout_accuracy):.3f} held out; "
              f"budgets: {args.iterations} G updates, {args.seconds:.0f} s of training", flush=True)

        setups = args.setups
        for budget in ({"iterations": args.iterations, "seconds": None}, {"iterations": None, "seconds": args.seconds}):
            rows = []
            for setup in setups:
                seeds = args.seeds if setup in ("seed loop (tutorial)", "dcgan") else args.preset_seeds
                runs = []
                for seed in range(seeds):
                    if setup == "seed loop (tutorial)":
                        sample, per_iteration, done = plain_loop(images, seed, **budget)
                    else:
                        out = Path(tmp) / f"{setup}-{seed}-{budget['iterations']}"
                        sample, per_iteration, done = template(setup, seed, root, out, **budget)
                    runs.append({**quality(sample, classifier, real_features, args.samples),
                                 "s/it": per_iteration, "iterations": done})
                    print(f"  {setup} seed {seed}: FD {runs[-1]['fd']:.1f}, {runs[-1]['classes']} classes, "
                          f"{per_iteration * 1000:.0f} ms/it, {done} iterations", file=sys.stderr, flush=True)
                rows.append((setup, runs))
            title = (f"{args.iterations} G updates each" if budget["iterations"]
                     else f"{args.seconds:.0f} s of training each")
            print(f"\n{title}\n\n| setup | seeds | FD median | FD range | classes >= 2% | s / iteration | iterations |")
            print("| --- | --- | --- | --- | --- | --- | --- |")
            for setup, runs in rows:
                fds = [run["fd"] for run in runs]
                name = "dcgan (template default)" if setup == "dcgan" else setup
                print(f"| {name} | {len(runs)} | {statistics.median(fds):.1f} | {min(fds):.1f} - {max(fds):.1f} | "
                      f"{statistics.median(run['classes'] for run in runs):g} | "
                      f"{statistics.median(run['s/it'] for run in runs):.3f} | "
                      f"{statistics.median(run['iterations'] for run in runs):g} |", flush=True)


if __name__ == "__main__":
    main()
