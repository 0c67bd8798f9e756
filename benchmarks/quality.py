"""Sample quality on the built-in digits for a fixed training budget: dcgan (train.py's digits
config, with and without the EMA generator) beside the seed's plain PyTorch loop, same data,
batch size and number of iterations.

Quality is judged by a small classifier of the real digits (src/dcgan/metrics/features.py): the Frechet
distance between real and generated digits in its feature space (lower is better), and how evenly
the ten classes appear among the generated digits (a GAN that drops digits scores low).

    python benchmarks/quality.py [--iterations 1500] [--seeds 0 1] [--samples 1000]
"""

import argparse
import statistics
import sys
import tempfile
from pathlib import Path

import torch
from hydra import compose, initialize_config_dir
from omegaconf import DictConfig

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))  # train.py lives at the top of the repository

from dcgan.data.digits import write_digits  # noqa: E402
from dcgan.data.folder import Folder  # noqa: E402
from dcgan.data.images import Decoded  # noqa: E402
from dcgan.metrics.features import digit_classifier  # noqa: E402
from dcgan.metrics.scores import scores  # noqa: E402
from dcgan.model.checkpoints import from_checkpoint  # noqa: E402
from dcgan.model.sampling import sampling_mode, to_uint8  # noqa: E402
from tutorial_loop import seed_loop  # noqa: E402
from train import train  # noqa: E402


def compose_train_config(overrides: list[str]) -> DictConfig:
    """train.py's config (the digits preset) with these overrides, as Hydra composes it."""
    with initialize_config_dir(config_dir=str(ROOT / "conf"), version_base="1.3"):
        return compose("config", overrides=overrides)


def digits(folder: Path) -> tuple[Path, torch.nn.Module, torch.Tensor, torch.Tensor]:
    """The built-in digits written under folder: their root, the digit classifier, the images as
    training reads them (1797, 1, 32, 32) uint8, and their features in the classifier."""
    root = folder / "digits"
    write_digits(root)
    classifier = digit_classifier(str(root))
    dataset = Decoded(Folder(root), 32, 1)
    images = torch.stack([dataset[i] for i in range(len(dataset))])
    return root, classifier, images, classifier(images).double()


def quality(sample, classifier, real_features: torch.Tensor, count: int, nz: int = 100) -> dict[str, float]:
    """FD to the real digits, precision and recall (k = 3) and class coverage of `count` samples
    of sample(z)."""
    z = torch.randn(count, nz, 1, 1, generator=torch.Generator().manual_seed(123))
    with torch.no_grad():
        fake = to_uint8(torch.cat([sample(batch) for batch in z.split(250)]))
        fake_features, classes = classifier(fake).double(), classifier.classify(fake)
    values = scores(["fid", "precision", "recall"], real_features, fake_features)
    shares = torch.bincount(classes, minlength=10).double() / count
    entropy = -(shares[shares > 0] * shares[shares > 0].log()).sum() / torch.log(torch.tensor(10.0))
    return {"fd": values["fid"], "precision": values["precision"], "recall": values["recall"],
            "classes": int((shares >= 0.02).sum()), "evenness": float(entropy),
            "min share": float(shares.min()), "max share": float(shares.max())}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--iterations", type=int, default=1500)
    parser.add_argument("--seeds", type=int, nargs="+", default=[0])
    parser.add_argument("--samples", type=int, default=1000)
    parser.add_argument("--ema-decay", type=float, default=0.999)
    args = parser.parse_args()

    with tempfile.TemporaryDirectory() as tmp:
        root, classifier, images, real_features = digits(Path(tmp))
        print(f"classifier held-out accuracy {float(classifier.holdout_accuracy):.3f}; budget {args.iterations} "
              f"iterations of batch 64 (32x32 greyscale, ngf=ndf=32), seeds {args.seeds}")

        results: dict[str, list[dict]] = {"seed loop (tutorial)": [], "dcgan": [], f"dcgan, ema_decay={args.ema_decay}": []}
        for seed in args.seeds:
            setup = argparse.Namespace(accelerator="cpu", width=32, image_size=32, batch_size=64, warmup=0,
                                       cudnn_benchmark=False)
            epochs = -(-args.iterations // (len(images) // 64))
            _, net_g = seed_loop(setup, images, "32-true", epochs=epochs, seed=seed)

            def plain(z, net=net_g):
                with sampling_mode(net):  # the seed samples G in training mode, like this
                    return net(z)

            results["seed loop (tutorial)"].append(quality(plain, classifier, real_features, args.samples))
            for index, (name, ema) in enumerate((("dcgan", None), (f"dcgan, ema_decay={args.ema_decay}", args.ema_decay))):
                out = Path(tmp) / f"run{index}-seed{seed}"
                cfg = compose_train_config([
                    f"data.root={root}", f"paths.output_dir={out}", f"seed={seed}", f"model.ema_decay={ema or 'null'}",
                    f"+trainer.max_steps={2 * args.iterations}", "trainer.max_epochs=1000", "~callbacks.quality",
                    "~callbacks.image_grids", "~callbacks.figures", "callbacks.progress_bar.refresh_rate=0",
                    "callbacks.checkpoints.every_n_epochs=0", "callbacks.checkpoints.monitor=null",
                    "+trainer.enable_model_summary=false"])
                train(cfg)
                model = from_checkpoint(out / "checkpoints" / "last.ckpt")
                results[name].append(quality(model, classifier, real_features, args.samples))

    print(f"\n{'':<28} {'FD (lower better)':>18} {'classes >= 2%':>14} {'evenness':>9} {'min share':>10} {'max share':>10}")
    for name, runs in results.items():
        mean = {key: statistics.mean(run[key] for run in runs) for key in runs[0]}
        fds = " / ".join(f"{run['fd']:.0f}" for run in runs)
        print(f"{name:<28} {fds:>18} {mean['classes']:>14.1f} {mean['evenness']:>9.3f} {mean['min share']:>10.3f} "
              f"{mean['max share']:>10.3f}")


if __name__ == "__main__":
    main()
