"""Class-conditional against unconditional training on the built-in digits, at equal iterations
(the digits preset: 32x32 greyscale, batch 64, ngf = ndf = 32), over seeds.

During each run, every --every iterations: the Frechet distance (FD) of 1,000 samples to the real
digits in the digit classifier's features (conditional: 100 of each class), and for the
conditional model the per-class accuracy, the fraction of samples the classifier recognises as
the class they were asked for (chance: 0.10). Printed as tables at each budget of --iterations
and as the curve over iterations (medians over seeds).

--diagnose adds, over the first iterations of one conditional run, D's logit split into its
unconditional part and the projection term <embed(y), features> on a real and a fake batch, and
G's spread: the standard deviation of its images across latents (one class) and across classes
(one latent).

    python benchmarks/conditional.py [--iterations 224 1000] [--seeds 3] [--every 56] [--diagnose]
"""

import argparse
import json
import statistics
import sys
import tempfile
from pathlib import Path

import pytorch_lightning as pl
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # train.py lives at the top of the repository

from quality import compose_train_config, digits, quality  # noqa: E402

from dcgan.data.folder import Folder  # noqa: E402
from dcgan.data.images import Decoded, find_images  # noqa: E402
from dcgan.metrics.features import digit_classifier  # noqa: E402
from dcgan.model.sampling import to_uint8  # noqa: E402
from train import train  # noqa: E402

SAMPLES = 1000
SETUPS = ["unconditional", "conditional"]
DIAGNOSED = [0, 1, 2, 5, 10, 20, 50, 100, 224]  # iterations


class Curve(pl.Callback):
    """Writes [iteration, FD, per-class accuracy or null] every `every` iterations and at the end
    to `path` (JSON), in the digit classifier of the digits under `root`."""

    def __init__(self, every: int, root: str, path: str):
        self.every, self.path, self.points = every, Path(path), []
        self.classifier, real = digit_classifier(root), real_digits(Path(root))
        self.real_features = self.classifier(real).double()

    def on_train_start(self, trainer, pl_module):
        self._point(pl_module)  # G as initialised

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx):
        done = pl_module.iteration
        if done % self.every == 0 or done * (pl_module.hparams.n_critic + 1) >= trainer.max_steps:
            self._point(pl_module)

    def _point(self, pl_module) -> None:
        self.points.append([pl_module.iteration, *score(pl_module, self.classifier, self.real_features)])
        self.path.write_text(json.dumps(self.points))


def real_digits(root: Path) -> torch.Tensor:
    dataset = Decoded(Folder(root), 32, 1)
    return torch.stack([dataset[i] for i in range(len(dataset))])  # (N, 1, 32, 32) uint8


def score(model, classifier, real_features: torch.Tensor) -> tuple[float, float | None]:
    """(FD, per-class accuracy or None) of SAMPLES images, the same latents every time."""
    conditional = model.hparams.get("num_classes", 0) > 0
    labels = torch.arange(SAMPLES) // (SAMPLES // 10)  # 100 of each class, in batches of 250
    accuracy = None
    if conditional:
        z = torch.randn(SAMPLES, 100, 1, 1, generator=torch.Generator().manual_seed(123))
        with torch.no_grad():
            fake = torch.cat([model(zb, yb) for zb, yb in zip(z.split(250), labels.split(250))])
            accuracy = float((classifier.classify(to_uint8(fake)) == labels).float().mean())
    sample = (lambda zb: model(zb, torch.arange(len(zb)) % 10)) if conditional else model
    return quality(sample, classifier, real_features, SAMPLES)["fd"], accuracy


class Diagnosis(pl.Callback):
    """Writes, at the iterations `at`, D's logit split and G's spread on a fixed batch of the
    real digits (7 of each class) to `path` (JSON)."""

    def __init__(self, at: list[int], root: str, path: str):
        self.at, self.path, self.rows = set(at), Path(path), []
        classes = torch.tensor([int(path.parent.name) for path in find_images(Path(root))])
        chosen = torch.cat([torch.nonzero(classes == c)[:7, 0] for c in range(10)])
        self.real = real_digits(Path(root))[chosen].float().mul(2 / 255).sub(1)  # (70, 1, 32, 32)
        self.labels = classes[chosen]

    def on_train_batch_start(self, trainer, pl_module, batch, batch_idx):
        if pl_module.iteration not in self.at:
            return
        d = pl_module.discriminator
        z = torch.randn(len(self.real), 100, 1, 1, generator=torch.Generator().manual_seed(7))
        with torch.no_grad():
            fake = pl_module(z, self.labels.to(pl_module.device))
            row = {"iteration": pl_module.iteration}
            state = {k: v.clone() for k, v in d.state_dict().items()}
            for name, images in (("real", self.real), ("fake", fake)):
                features = d.main[:-1](images.to(pl_module.device))  # in training mode, as D judges
                plain = d.main[-1](features).flatten()
                projection = (d.embed(self.labels.to(pl_module.device)) * features.sum((2, 3))).sum(1)
                row |= {f"D {name}: plain part": float(plain.mean()), f"D {name}: plain std": float(plain.std()),
                        f"D {name}: projection": float(projection.mean()),
                        f"D {name}: projection std": float(projection.std())}
            d.load_state_dict(state)  # the passes above moved BatchNorm's running averages
            one_class = pl_module(torch.randn(64, 100, 1, 1, generator=torch.Generator().manual_seed(8)),
                                  torch.zeros(64, dtype=torch.long, device=pl_module.device))
            one_latent = pl_module(z[:1].repeat(10, 1, 1, 1), torch.arange(10, device=pl_module.device))
            row |= {"G std across latents": float(one_class.std(0).mean()),
                    "G std across classes": float(one_latent.std(0).mean())}
        self.rows.append(row)
        self.path.write_text(json.dumps(self.rows))


def run(setup: str, seed: int, root: Path, out: Path, iterations: int, callback: str, extra=()) -> None:
    train(compose_train_config([
        f"data.root={root}", f"paths.output_dir={out}", f"seed={seed}", f"+trainer.max_steps={2 * iterations}",
        "trainer.max_epochs=100000", "~callbacks.quality", "~callbacks.figures", "~callbacks.image_grids",
        "~callbacks.hparams", "callbacks.progress_bar.refresh_rate=0", "callbacks.checkpoints.every_n_epochs=0",
        "callbacks.checkpoints.monitor=null", "+trainer.enable_model_summary=false", f"+callbacks.probe={callback}",
        *(["data.labels=true"] if setup == "conditional" else []), *extra]))


def spread(values: list[float]) -> str:
    return f"{statistics.median(values):.3g} ({min(values):.3g} - {max(values):.3g})"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--iterations", type=int, nargs="+", default=[224, 1000], help="budgets, G updates")
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--every", type=int, default=56, help="iterations between points of the curve")
    parser.add_argument("--diagnose", action="store_true", help="D's logit split and G's spread, one run")
    parser.add_argument("--setups", nargs="+", default=SETUPS, choices=SETUPS)
    parser.add_argument("overrides", nargs="*", help="train.py overrides for both setups, e.g. model.ema_decay=0.999")
    args = parser.parse_args()
    longest = max(args.iterations)

    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        root, classifier, _, _ = digits(tmp)
        print(f"digit classifier: {float(classifier.holdout_accuracy):.3f} held out; {args.seeds} seeds; "
              f"overrides: {' '.join(args.overrides) or 'none'}", flush=True)
        if args.diagnose:
            at = [i for i in DIAGNOSED if i <= longest]
            run("conditional", 0, root, tmp / "diagnose", max(at) + 1,
                f"{{_target_: conditional.Diagnosis, at: {at}, root: '{root}', path: '{tmp / 'diagnosis.json'}'}}",
                args.overrides)
            rows = json.loads((tmp / "diagnosis.json").read_text())
            print("\nD's logit on 70 real digits (7 of each class) and 70 fakes of the same classes, split into its\n"
                  "unconditional part and the projection term (means, and the spread of the projection over the\n"
                  "batch); G's spread: the std of its pixels across 64 latents of class 0, and across the 10\n"
                  "classes of one latent\n")
            print("| iteration | " + " | ".join(k for k in rows[0] if k != "iteration") + " |")
            print("| --- |" + " --- |" * (len(rows[0]) - 1))
            for row in rows:
                print(f"| {row['iteration']} | " + " | ".join(f"{v:.3g}" for k, v in row.items() if k != "iteration")
                      + " |", flush=True)

        curves: dict[str, list[list]] = {setup: [] for setup in args.setups}
        for setup in curves:
            for seed in range(args.seeds):
                path = tmp / f"{setup}-{seed}.json"
                run(setup, seed, root, tmp / f"{setup}-{seed}", longest,
                    f"{{_target_: conditional.Curve, every: {args.every}, root: '{root}', path: '{path}'}}",
                    args.overrides)
                curves[setup].append(json.loads(path.read_text()))
                print(f"  {setup} seed {seed}: " + ", ".join(
                    f"{i}: FD {fd:.0f}" + (f" acc {acc:.2f}" if acc is not None else "") for i, fd, acc in curves[setup][-1]),
                    file=sys.stderr, flush=True)

        def at(log: list[tuple], iteration: int) -> tuple:
            return next(point for point in log if point[0] >= iteration)

        for budget in args.iterations:
            print(f"\n{budget} iterations, {args.seeds} seeds: median (range)\n\n| | FD | per-class accuracy |\n"
                  "| --- | --- | --- |")
            for setup, logs in curves.items():
                points = [at(log, budget) for log in logs]
                accuracy = spread([p[2] for p in points]) if setup == "conditional" else "-"
                print(f"| {setup} | {spread([p[1] for p in points])} | {accuracy} |", flush=True)
        columns = [*(f"FD {setup}" for setup in curves), *(["per-class accuracy"] if "conditional" in curves else [])]
        print("\nthe curve (medians over seeds)\n\n| iteration | " + " | ".join(columns) + " |\n| --- |"
              + " --- |" * len(columns))
        for index, (iteration, *_) in enumerate(next(iter(curves.values()))[0]):
            cells = [f"{statistics.median(log[index][1] for log in logs):.1f}" for logs in curves.values()]
            if "conditional" in curves:
                cells.append(f"{statistics.median(log[index][2] for log in curves['conditional']):.2f}")
            print(f"| {iteration} | " + " | ".join(cells) + " |", flush=True)


if __name__ == "__main__":
    main()
