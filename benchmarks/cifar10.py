"""The field's CIFAR-10 protocols, ready to run: SN-GAN (ResNet) and WGAN-GP trained as Mimicry trains
them, and DCGAN, WGAN-GP and SN-GAN with StudioGAN's settings, scored by evaluate.py with each one's
sample counts. A published number is printed only beside a run of that anchor's own setup, and every
row says where ours differs from the anchor's.

Mimicry (kwotsin/mimicry, README "Baselines", CIFAR-10): experiment=sngan_cifar10 is its setup, 100K
G updates, batch 64 for D and G, n_dis 5, Adam 2e-4 with betas (0, 0.9) decayed linearly to 0, G's
update on latents of its own, the 50,000 training images without flips; scored on 50,000 generated
images against the 50,000 training images. Its SNGAN32 (model=sngan_resnet) and WGAN-GP 32
(model=wgan_gp_resnet: no spectral norm, D's features mean-pooled) are layer for layer ours.
StudioGAN (configs/CIFAR10/*.yaml over src/config.py's defaults: batch 64, Adam 2e-4 with betas (0.5,
0.999), z 128, x-flips, 5 D updates per step unless the file says): its training settings on our
networks, scored on 10,000 generated images against the 10,000 test images; its networks are not
ours (DCGAN and WGAN-GP: its "deep_conv" CNN, here the tutorial's DCGAN; SN-GAN: its ResNet with
orthogonal init and nearest upsampling, here Mimicry's), so its numbers are not printed.

It needs CIFAR-10 under --root (torchvision's layout; --download fetches it), the Inception
weights (README, Quality) and a GPU: 100k-200k G updates a setup. --smoke runs the same steps on a
synthetic CIFAR-10 (random images in its own file format) for a few iterations at tiny widths,
scored in the digit classifier's features (no Inception weights here): it proves the pipeline,
not the numbers.

    python benchmarks/cifar10.py --root ~/data [--download] [--suites mimicry studiogan] [--setups sngan wgan_gp]
    python benchmarks/cifar10.py --smoke
"""

import argparse
import pickle
import sys
import tempfile
from pathlib import Path
from typing import NamedTuple

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))  # train.py and evaluate.py live at the top of the repository

from hydra import compose, initialize_config_dir  # noqa: E402
from omegaconf import open_dict  # noqa: E402

from dcgan.data.digits import write_digits  # noqa: E402
from evaluate import evaluate  # noqa: E402
from train import train  # noqa: E402


class Setup(NamedTuple):
    iterations: int  # G updates
    overrides: list[str]  # train.py's
    published: str | None  # the anchor's number, where this is its setup; None: not its setup
    differs: str  # where ours differs from the anchor's
    tiny: list[str]  # --smoke's widths


# Where any run of ours differs from Mimicry's: its loader runs on across epochs (a short batch of 16
# ends each), ours leaves out each epoch's last 80 images, which fill no step of 5 D batches of 64
# (data/module.py); its spectral norm is its own SNConv2d/SNLinear, ours torch's parametrization (one
# power iteration a forward in both); its Inception is the TF graph of the FID code, ours evaluate.py's;
# it reports the mean and spread of several evaluations, this one run's.
MIMICRY = ("each epoch's last 80 images left out (no whole step); torch's spectral norm; evaluate.py's Inception; "
           "one run")
CIFAR = ["data=torchvision", "data.name=CIFAR10", "data.image_size=32", "data.channels=3"]
STUDIOGAN = ["~experiment", *CIFAR, "data.batch_size=64", "data.hflip=true", "model.nz=128"]
RESNET, TUTORIAL = ["model.generator.ngf=16", "model.discriminator.ndf=16"], ["model.ngf=8", "model.ndf=8"]
SUITES = {  # suite -> (evaluation: num_fake, reference split), {setup: Setup}
    "mimicry": ((50_000, "train"), {
        "sngan": Setup(100_000, ["experiment=sngan_cifar10"], "IS 7.97, FID 16.77, KID 0.0125", MIMICRY, RESNET),
        "wgan_gp": Setup(100_000, ["experiment=sngan_cifar10", "model=wgan_gp_resnet"], "IS 7.33, FID 22.29, KID 0.0204",
                         MIMICRY, RESNET),
    }),
    "studiogan": ((10_000, "test"), {
        "dcgan": Setup(200_000, [*STUDIOGAN, "model=dcgan", "model.n_critic=2", "model.g_fresh_latents=true"], None,
                       "networks: the tutorial's DCGAN, not StudioGAN's deep_conv", TUTORIAL),
        "wgan_gp": Setup(100_000, [*STUDIOGAN, "model=wgan_gp", "model.lr=2e-4", "model.beta2=0.999"], None,
                         "networks: the tutorial's DCGAN (layer norm in D), not StudioGAN's deep_conv", TUTORIAL),
        "sngan": Setup(100_000, [*STUDIOGAN, "model=sngan_resnet", "model.beta1=0.5", "model.beta2=0.999",
                                 "model.lr_decay=none", "data.labels=true"], None,
                       "networks: Mimicry's ResNet (Glorot init, bilinear upsampling), not StudioGAN's (orthogonal, nearest)",
                       RESNET),
    }),
}


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
            for name, setup in setups.items():
                if name not in args.setups:
                    continue
                iterations, overrides = setup.iterations, setup.overrides
                if args.smoke:  # not the anchor's setup any more: its number is not printed
                    iterations, num_fake, overrides = 2, 100, [*overrides, *setup.tiny, "data.batch_size=16"]
                    setup = setup._replace(published=None, differs=f"smoke run; {setup.differs}")
                run = out / f"{suite}-{name}-seed{args.seed}"
                cfg = config("config", [f"data.root={root}", f"data.download={args.download}", f"seed={args.seed}",
                                        *overrides, f"paths.output_dir={run}", "trainer.max_epochs=100000",
                                        "~callbacks.quality", "callbacks.checkpoints.monitor=null"])
                with open_dict(cfg.trainer):
                    cfg.trainer.max_steps = (cfg.model.n_critic + 1) * iterations  # every optimizer step counts
                train(cfg)
                scored = evaluate(config("evaluate", [f"ckpt_path={run / 'checkpoints' / 'last.ckpt'}", *CIFAR,
                                                      f"data.root={root}", f"data.split={split}", f"num_fake={num_fake}",
                                                      "metrics=[is,fid,kid,precision,recall]", *features,
                                                      f"cache_dir={out / 'reference'}", "progress=false"]))
                rows.append((suite, name, iterations, scored, setup))
                print(f"  {suite} {name}: IS {scored['metrics']['is']:.2f}, FID {scored['metrics']['fid']:.1f}",
                      file=sys.stderr, flush=True)
    print(f"\nCIFAR-10{' (smoke: synthetic data, digit features; not comparable)' if args.smoke else ''}, seed {args.seed}\n")
    print("| suite | setup | G updates | samples vs real | IS | FID | KID | precision | recall | the anchor's, "
          "on its own setup | where ours differs |")
    print("| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |")
    for suite, name, iterations, scored, setup in rows:
        metrics, protocol = scored["metrics"], scored["protocol"]
        print(f"| {suite} | {name} | {iterations:,} | {protocol['num_fake']:,} vs {protocol['num_real']:,} | "
              f"{metrics['is']:.2f} | {metrics['fid']:.1f} | {metrics['kid']:.4f} | {metrics['precision']:.2f} | "
              f"{metrics['recall']:.2f} | {setup.published or '- (not its setup)'} | {setup.differs} |", flush=True)

if __name__ == "__main__":
    main()
