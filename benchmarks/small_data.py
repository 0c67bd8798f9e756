"""Small datasets and class labels on the built-in digits (2 CPU cores, the digits preset: 32x32
greyscale, batch 64, ngf = ndf = 32):

1. A class-conditional DCGAN (data.labels=true) for the preset's 60 epochs: 100 samples of each
   class, classified by the digit classifier (which scores 97-98% on held-out real digits). The
   fraction recognised as their class is the per-class accuracy.
2. A 10% subset of the digits (every tenth file, 180 images): DiffAugment
   (model.augment=[color,translation,cutout]) against none, at the same number of G updates.
   FD is taken against all 1,797 digits.

Each over seeds, with the median and the range.

    python benchmarks/small_data.py [--seeds 3] [--subset-iterations 1000]
"""

import argparse
import shutil
import statistics
import sys
import tempfile
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # train.py lives at the top of the repository

from gan_variants import template  # noqa: E402
from quality import digits, quality  # noqa: E402

from dcgan.data.digits import MARKER  # noqa: E402
from dcgan.data.images import find_images  # noqa: E402

AUGMENT = "model.augment=[color,translation,cutout]"


def subset(root: Path, into: Path, every: int = 10) -> Path:
    """Every `every`-th file of the digits, in the same class folders, marked as digits so that
    the digits preset reads it."""
    for index, path in enumerate(find_images(root)):
        if index % every == 0:
            (into / path.parent.name).mkdir(parents=True, exist_ok=True)
            shutil.copy(path, into / path.parent.name / path.name)
    (into / MARKER).touch()
    return into


def spread(values: list[float]) -> str:
    return f"{statistics.median(values):.1f} ({min(values):.1f} - {max(values):.1f})"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--epochs", type=int, default=60, help="of the conditional model on all digits")
    parser.add_argument("--subset-iterations", type=int, default=1000, help="G updates on the 10% subset")
    args = parser.parse_args()

    with tempfile.TemporaryDirectory() as tmp:
        root, classifier, _, real_features = digits(Path(tmp))
        small = subset(root, Path(tmp) / "subset" / "digits")
        print(f"digit classifier: {float(classifier.holdout_accuracy):.3f} held out; subset: "
              f"{len(find_images(small))} images", flush=True)

        accuracies, fds = [], []
        for seed in range(args.seeds):
            model, _, _ = template("dcgan", seed, root, Path(tmp) / f"conditional-{seed}", None, None,
                                   ("data.labels=true", f"trainer.max_epochs={args.epochs}"))
            with torch.no_grad():
                z = torch.randn(1000, 100, 1, 1, generator=torch.Generator().manual_seed(123))
                labels = torch.arange(1000) // 100  # 100 of each class, in batches of 250 (as FID's)
                fake = torch.cat([model(zb, yb) for zb, yb in zip(z.split(250), labels.split(250))])
                predicted = classifier.classify(fake.add(1).mul(127.5).round().clamp(0, 255).to(torch.uint8))
            accuracies.append([float((predicted[labels == c] == c).float().mean()) for c in range(10)])
            fds.append(quality(lambda zb: model(zb, torch.arange(len(zb)) % 10), classifier, real_features, 1000)["fd"])
            print(f"  conditional seed {seed}: accuracy {statistics.mean(accuracies[-1]):.3f}, FD {fds[-1]:.1f}",
                  file=sys.stderr, flush=True)
        print(f"\nclass-conditional DCGAN, {args.epochs} epochs, {args.seeds} seeds: FD {spread(fds)}\n")
        print("| class | " + " | ".join(str(c) for c in range(10)) + " | mean |")
        print("| --- |" + " --- |" * 11)
        per_class = [statistics.median(run[c] for run in accuracies) for c in range(10)]
        means = [statistics.mean(run) for run in accuracies]
        print("| recognised as its class (median over seeds) | " + " | ".join(f"{a:.2f}" for a in per_class)
              + f" | {statistics.median(means):.2f} |", flush=True)

        rows = []
        for name, extra in (("no augmentation", ()), ("DiffAugment color, translation, cutout", (AUGMENT,))):
            runs = []
            for seed in range(args.seeds):
                model, per_iteration, _ = template("dcgan", seed, small, Path(tmp) / f"{len(extra)}-{seed}",
                                                   args.subset_iterations, None, extra)
                runs.append({**quality(model, classifier, real_features, 1000), "s/it": per_iteration})
                print(f"  {name} seed {seed}: FD {runs[-1]['fd']:.1f}", file=sys.stderr, flush=True)
            rows.append((name, runs))
        print(f"\n10% of the digits ({len(find_images(small))} images), {args.subset_iterations} G updates, "
              f"{args.seeds} seeds\n\n| | FD median (range) | classes >= 2% | s / iteration |\n| --- | --- | --- | --- |")
        for name, runs in rows:
            print(f"| {name} | {spread([run['fd'] for run in runs])} | "
                  f"{statistics.median(run['classes'] for run in runs):g} | "
                  f"{statistics.median(run['s/it'] for run in runs):.3f} |", flush=True)


if __name__ == "__main__":
    main()
