"""The field's CIFAR-10 protocol, ready to run: DCGAN, WGAN-GP and SN-GAN (ResNet) trained with
StudioGAN's and Mimicry's settings (their G updates, batch, optimiser) and scored by evaluate.py
with each one's sample counts, printed beside the numbers they publish.

StudioGAN (configs/CIFAR10/*.yaml over src/config.py's defaults: batch 64, Adam 2e-4 with betas
(0.5, 0.999), z 128, x-flips, D updates per step 5 unless the file says): scored on 10,000
generated images against the 10,000 test images. Mimicry (100k G updates, batch 64, n_dis 5,
Adam 2e-4 with betas (0, 0.9)): 50,000 generated against the 50,000 training images. Where the
networks differ from theirs it says so: StudioGAN's DCGAN and WGAN-GP use its "deep_conv" CNN,
here the tutorial's DCGAN at 32x32; the ResNets are Mimicry's layout (src/dcgan/model/networks/resnet.py).

It needs CIFAR-10 under --root (torchvision's layout; --download fetches it), the Inception
weights (README, Quality) and a GPU: 100k-200k G updates a setup. --smoke runs the same steps on a
synthetic CIFAR-10 (random images in its own file format) for a few iterations at tiny widths,
scored in the digit classifier's features (no Inception weights here): it proves the pipeline,
not the numbers.

    python benchmarks/cifar10.py --root ~/data [--download] [--suites studiogan mimicry] [--setups dcgan sngan]
    python benchmarks/cifar10.py --smoke
"""

import argparse
import pickle
import sys
import tempfile
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))  # train.py and evaluate.py live at the top of the repository

from hydra import compose, initialize_config_dir  # noqa: E402
from omegaconf import open_dict  # noqa: E402

from dcgan.data.digits import write_digits  # noqa: E402
from evaluate import evaluate  # noqa: E402
from train import train  # noqa: E402

CIFAR = ["data=torchvision", "data.name=CIFAR10", "data.image_size=32", "data.channels=3"]
SUITES = {  # suite -> (evaluation: num_fake, reference split), {setup: (G updates, overrides, published)}
    "studiogan": ((10_000, "test"), {
        "dcgan": (200_000, ["model=dcgan", "model.nz=128", "model.n_critic=2"], "IS 6.64, FID 49.0"),
        "wgan_gp": (100_000, ["model=wgan_gp", "model.nz=128", "model.lr=2e-4", "model.beta2=0.999"], "IS 7.46, FID 25.9"),
        "sngan": (100_000, ["model=sngan_resnet", "model.beta1=0.5", "model.beta2=0.999", "data.labels=true"],
                  "IS 8.68, FID 13.2"),
    }),
    "mimicry": ((50_000, "train"), {
        "wgan_gp": (100_000, ["model=sngan_resnet", "model.loss=wasserstein", "model.spectral_norm=none",
                              "model.gp_lambda=10"], "FID 22.3"),
        "sngan": (100_000, ["model=sngan_resnet"], "FID 16.8"),
    }),
}
SMOKE = {"dcgan": ["model.ngf=8", "model.ndf=8"], "wgan_gp": ["model.ngf=8", "model.ndf=8"],
         "sngan": ["model.generator.ngf=16", "model.discriminator.ndf=16"]}


def config(name: str, overrides: list[str]):
    with initialize_config_dir(config_dir=str(ROOT / "conf"), version_base="1.3"):
        return compose(name, overrides=overrides)


def synthetic_cifar(root: Path, count: int = 256) -> Path:
    """count random 32x32 images with 10 classes in CIFAR-10's own files (pickled batches)."""
    folder = root / "cifar-10-batches-py"
    folder.mkdir(parents=True)
    rng = np.random.default_rng(0)
    rows, labels = rng.integers(0, 256, (count, 3072), dtype=np.uint8), (np.arange(count) % 10).tolist()
    for name in [f"data_batch_{i}" for i in range(1, 6)] + ["test_batch"]:
        (folder / name).write_bytes(pickle.dumps({"data": rows, "labels": labels}))
    (folder / "batches.meta").write_bytes(pickle.dumps({"label_names": [f"class{i}" for i in range(10)]}))
    return root


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--root", help="where CIFAR-10 is (torchvision's cifar-10-batches-py/)")
    parser.add_argument("--download", action="store_true", help="fetch CIFAR-10 to --root first")
    parser.add_argument("--suites", nargs="+", default=list(SUITES), choices=list(SUITES))
    parser.add_argument("--setups", nargs="+", default=["dcgan", "wgan_gp", "sngan"])
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", default="cifar10-runs", help="where the runs and their checkpoints go")
    parser.add_argument("--smoke", action="store_true", help="a synthetic CIFAR-10, a few iterations: the pipeline only")
    args = parser.parse_args()
    if not args.smoke and not args.root:
        parser.error("--root is required (or --smoke)")

    with tempfile.TemporaryDirectory() as tmp:
        root = synthetic_cifar(Path(tmp) / "cifar") if args.smoke else Path(args.root).expanduser()
        out = Path(tmp) / "runs" if args.smoke else Path(args.out)
        if args.smoke:
            write_digits(Path(tmp) / "digits")
        features = ["features=digits", f"features.root={Path(tmp) / 'digits'}"] if args.smoke else ["features=inception"]
        rows = []
        for suite in args.suites:
            (num_fake, split), setups = SUITES[suite]
            for setup, (iterations, overrides, published) in setups.items():
                if setup not in args.setups:
                    continue
                if args.smoke:
                    iterations, num_fake = 2, 100
                    overrides = [*overrides, *SMOKE[setup], "data.batch_size=16"]
                run = out / f"{suite}-{setup}-seed{args.seed}"
                cfg = config("config", [*CIFAR, f"data.root={root}", f"data.download={args.download}", "data.hflip=true",
                                        "data.batch_size=64", "~experiment", f"seed={args.seed}", *overrides,
                                        f"paths.output_dir={run}", "trainer.max_epochs=100000", "~callbacks.quality",
                                        "callbacks.checkpoints.monitor=null"])
                with open_dict(cfg.trainer):
                    cfg.trainer.max_steps = (cfg.model.n_critic + 1) * iterations  # every optimizer step counts
                train(cfg)
                scored = evaluate(config("evaluate", [f"ckpt_path={run / 'checkpoints' / 'last.ckpt'}", *CIFAR,
                                                      f"data.root={root}", f"data.split={split}", f"num_fake={num_fake}",
                                                      "metrics=[is,fid,kid,precision,recall]", *features,
                                                      f"cache_dir={out / 'reference'}", "progress=false"]))
                rows.append((suite, setup, iterations, scored, published))
                print(f"  {suite} {setup}: IS {scored['metrics']['is']:.2f}, FID {scored['metrics']['fid']:.1f}",
                      file=sys.stderr, flush=True)
    print(f"\nCIFAR-10{' (smoke: synthetic data, digit features; not comparable)' if args.smoke else ''}, seed {args.seed}\n")
    print("| suite | setup | G updates | samples vs real | IS | FID | precision | recall | published |")
    print("| --- | --- | --- | --- | --- | --- | --- | --- | --- |")
    for suite, setup, iterations, scored, published in rows:
        metrics, protocol = scored["metrics"], scored["protocol"]
        print(f"| {suite} | {setup} | {iterations:,} | {protocol['num_fake']:,} vs {protocol['num_real']:,} | "
              f"{metrics['is']:.2f} | {metrics['fid']:.1f} | {metrics['precision']:.2f} | {metrics['recall']:.2f} | "
              f"{published} |", flush=True)


if __name__ == "__main__":
    main()
