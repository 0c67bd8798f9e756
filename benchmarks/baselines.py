"""The baselines on the built-in digits at an equal wall-clock budget: the DCGAN default and the
SN-GAN ResNet (model=sngan_resnet: hinge, spectral norm on D, n_critic 5, Adam 2e-4, betas (0,
0.9)), each with and without ADA (model.ada_target=0.6 over every policy), on the 10% subset of
the digits (every tenth file, 180 images), where a D overfits and ADA should help.

For each setup, over seeds: the Frechet distance of 1,000 samples to all 1,797 digits in the digit
classifier's features (FD, lower is better: median and range), precision and recall (k = 3) in
those features, and the iterations the budget bought. The ResNet runs at --resnet-width (ngf =
ndf; the paper's 256/128 at 32x32 is about 100x the digits DCGAN's compute per image on a CPU)
and batch 32 (its 5 D updates a step each take their own real batch: 5 x 64 > 180 images).

    python benchmarks/baselines.py [--seconds 90] [--seeds 3] [--resnet-width 32] [--ada-kimg 10]
"""

import argparse
import statistics
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # train.py lives at the top of the repository

from gan_variants import template  # noqa: E402
from quality import digits, quality  # noqa: E402
from small_data import spread, subset  # noqa: E402

from dcgan.data.images import find_images  # noqa: E402


def setups(args: argparse.Namespace) -> dict[str, tuple[str, tuple[str, ...]]]:
    """name -> (model preset, overrides)."""
    # n_critic 5 takes 5 real batches a step, which 180 images hold at 32 (not at the preset's 64)
    resnet = (f"model.generator.ngf={args.resnet_width}", f"model.discriminator.ndf={args.resnet_width}",
              "data.batch_size=32")
    ada = ("model.ada_target=0.6", f"model.ada_kimg={args.ada_kimg}")
    return {"dcgan (default)": ("dcgan", ()), "dcgan + ADA": ("dcgan", ada),
            "sngan_resnet": ("sngan_resnet", resnet), "sngan_resnet + ADA": ("sngan_resnet", (*resnet, *ada))}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--seconds", type=float, default=90.0, help="training seconds per run")
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--resnet-width", type=int, default=32, help="ngf = ndf of the ResNet (32: the digits preset's)")
    parser.add_argument("--ada-kimg", type=float, default=10,
                        help="ADA's speed: thousands of images for p to go from 0 to 1 (the paper's 500 is for "
                             "runs of millions of images)")
    parser.add_argument("--samples", type=int, default=1000)
    parser.add_argument("--setups", nargs="+", help="a subset of the setups, by name")
    args = parser.parse_args()

    with tempfile.TemporaryDirectory() as tmp:
        root, classifier, _, real_features = digits(Path(tmp))
        small = subset(root, Path(tmp) / "subset" / "digits")
        print(f"digit classifier: {float(classifier.holdout_accuracy):.3f} held out; subset: {len(find_images(small))} "
              f"images; {args.seconds:.0f} s of training per run, {args.seeds} seeds", flush=True)
        rows = []
        for name, (preset, extra) in setups(args).items():
            if args.setups and name not in args.setups:
                continue
            runs = []
            for seed in range(args.seeds):
                out = Path(tmp) / f"{preset}-{len(extra)}-{seed}"
                model, per_iteration, done = template(preset, seed, small, out, None, args.seconds, extra)
                runs.append({**quality(model, classifier, real_features, args.samples, model.hparams.nz),
                             "iterations": done})
                if "ada" in name.lower():
                    runs[-1]["p"] = float(model.augment.p)
                print(f"  {name} seed {seed}: FD {runs[-1]['fd']:.1f}, precision {runs[-1]['precision']:.2f}, "
                      f"recall {runs[-1]['recall']:.2f}, {done} iterations" +
                      (f", final p {runs[-1]['p']:.2f}" if "p" in runs[-1] else ""), file=sys.stderr, flush=True)
            rows.append((name, runs))
        print(f"\n10% of the digits, {args.seconds:.0f} s of training each, {args.seeds} seeds (median, range)\n")
        print("| setup | FD | precision | recall | iterations | final ADA p |\n| --- | --- | --- | --- | --- | --- |")
        for name, runs in rows:
            p = spread([run["p"] for run in runs]) if "p" in runs[0] else "-"
            print(f"| {name} | {spread([run['fd'] for run in runs])} | "
                  f"{statistics.median(run['precision'] for run in runs):.2f} | "
                  f"{statistics.median(run['recall'] for run in runs):.2f} | "
                  f"{statistics.median(run['iterations'] for run in runs):g} | {p} |", flush=True)
        base = statistics.median(run["fd"] for run in rows[0][1]) if rows and rows[0][0] == "dcgan (default)" else None
        if base:
            best = min(rows, key=lambda row: statistics.median(run["fd"] for run in row[1]))
            change = statistics.median(run["fd"] for run in best[1]) / base - 1
            print(f"\nlowest median FD: {best[0]}, {change:+.0%} against the DCGAN default (the goal: -20% or lower)")


if __name__ == "__main__":
    main()
