"""Score a trained generator, or a folder of samples, against real images by a fixed protocol:
python evaluate.py ckpt_path=PATH | samples=DIR [data=<preset> data.root=...] [num_fake=50000]
(see conf/evaluate.yaml and README.md, Evaluation). Prints the numbers beside the protocol that
produced them and writes both as JSON."""

import json
from pathlib import Path

import hydra
import torch
from hydra.utils import instantiate
from omegaconf import DictConfig, OmegaConf
from tqdm import tqdm

from dcgan.config import check_config, instantiate_node
from dcgan.data.folder import Folder
from dcgan.data.images import Decoded
from dcgan.errors import UsageError
from dcgan.launch import process
from dcgan.metrics.features import FeaturesUnavailable, extract
from dcgan.metrics.reference import fingerprint, reference_features
from dcgan.metrics.resize import PROTOCOLS, resized
from dcgan.metrics.scores import METRICS, check_metrics, scores
from dcgan.metrics.subsets import draw
from dcgan.model.checkpoints import from_checkpoint
from dcgan.model.sampling import equal_batches, to_uint8

OPTIONS = {"ckpt_path": str | None, "samples": str | None, "num_fake": int, "num_real": int | None,
           "metrics": list[str] | None, "resize": str, "batch_size": int, "device": str, "seed": int,
           "subset_seed": int, "kid_subset_size": int, "cache_dir": str | None, "output": str | None, "progress": bool}
INCEPTION = {"_target_": "dcgan.metrics.features.inception", "_partial_": True, "weights": None}
process.prepare()  # the resolvers a run's saved config may use


def run_config(ckpt_path: Path) -> DictConfig | None:
    """The config of the run that wrote the checkpoint (config.yaml in its run directory, resolved
    as it ran), if it is there."""
    saved = ckpt_path.expanduser().resolve().parent.parent / "config.yaml"
    return OmegaConf.load(saved) if saved.exists() else None


def evaluate(cfg: DictConfig) -> dict:
    """The scores, with the protocol that produced them; also written to the JSON file."""
    check_config(cfg, OPTIONS)
    if (cfg.ckpt_path is None) == (cfg.samples is None):
        raise UsageError("give either ckpt_path=<a .ckpt> (its generator is sampled) or samples=<a folder of images>")
    if cfg.resize not in PROTOCOLS:
        raise UsageError(f"resize={cfg.resize} is not a protocol: {' or '.join(PROTOCOLS)}")
    if cfg.num_fake < 2 or cfg.batch_size < 1:
        raise UsageError(f"num_fake={cfg.num_fake} must be at least 2 and batch_size={cfg.batch_size} at least 1")
    samples = Folder(Path(cfg.samples).expanduser(), option="samples") if cfg.samples else None  # listed first:
    # a wrong folder is said before the real images and the feature network are loaded
    device = torch.device(cfg.device if cfg.device != "auto" else "cuda" if torch.cuda.is_available() else "cpu")
    model = from_checkpoint(cfg.ckpt_path).to(device) if cfg.ckpt_path else None
    trained = run_config(Path(cfg.ckpt_path)) if cfg.ckpt_path else None

    # The real images: the data chosen here, else the data the checkpoint's run trained on.
    data = cfg.get("data") or (trained.data if trained is not None else None)
    if data is None:
        raise UsageError("which real images? choose them with data=<preset> data.root=... (a checkpoint "
                         "whose run directory holds its config.yaml is scored against its run's data)")
    # every real image is read, a batch at a time: none has to be whole (a small real set is no error here)
    datamodule = instantiate_node(data, "data", drop_last=False)
    datamodule.prepare_data()
    datamodule.setup("fit")
    size, channels = datamodule.image_size, datamodule.channels
    if model is not None and (model.hparams.image_size, model.hparams.channels) != (size, channels):
        raise UsageError(f"the checkpoint makes {model.hparams.image_size}x{model.hparams.image_size} images with "
                         f"{model.hparams.channels} channels, the data is {size}x{size} with {channels}: set "
                         f"data.image_size and data.channels to the checkpoint's")

    # The feature space: chosen here, else the one the run's metrics used, else Inception.
    spec = cfg.get("features") or (trained.callbacks.quality.get("features") if trained is not None and
                                   "quality" in trained.get("callbacks", {}) else None) or INCEPTION
    try:
        extractor = instantiate(spec)()
    except FeaturesUnavailable as error:
        raise UsageError(f"{error} (features=digits: the built-in digits' classifier, offline)") from None
    network = fingerprint(extractor)  # what the cached real features were computed with
    extractor = extractor.to(device).eval()
    features_name = str(spec["_target_"]).rpartition(".")[2]  # e.g. inception, digit_classifier, vgg16
    with_logits = hasattr(extractor, "logits")  # the Inception Score's classes (VGG-16's fc2 has none)

    classes = model.hparams.get("num_classes", 0) if model is not None else 0
    labelled = bool(classes) and datamodule.num_classes == classes
    metrics = list(cfg.metrics or [name for name in METRICS if (name != "intra_fid" or labelled)
                                   and (name != "is" or with_logits)])
    check_metrics(metrics)
    if "is" in metrics and not with_logits:
        raise UsageError(f"metric is (the Inception Score) needs class logits, which features={features_name} does "
                         "not give: leave is out of metrics, or use features=inception")

    def features_of(images: torch.Tensor, logits: bool = False) -> tuple[torch.Tensor, torch.Tensor | None]:
        return extract(extractor, resized(images, cfg.resize, extractor.input_size).to(device), logits)

    bar = {"unit": "img", "disable": not cfg.progress, "dynamic_ncols": True}

    # The real side, computed once per dataset and protocol: all of it, or a seeded random draw.
    total = len(datamodule.dataset)
    count = total if cfg.num_real is None else min(cfg.num_real, total)
    chosen = torch.arange(total) if count == total else draw(total, count, cfg.subset_seed)
    real_subset = f"all {total:,}" if count == total else f"{count:,} of {total:,} drawn with subset_seed={cfg.subset_seed}"

    def real_features() -> tuple[torch.Tensor, torch.Tensor | None]:
        parts, progress = [], tqdm(total=count, desc="real images' features", **bar)
        for batch in chosen.split(cfg.batch_size):
            parts.append(features_of(datamodule.images_at(batch))[0].cpu())
            progress.update(len(batch))
        progress.close()
        labels = datamodule.labels_at(chosen) if labelled else None
        return torch.cat(parts), labels

    source = datamodule.source
    key = {"data": source.key(), "image_size": size, "channels": channels, "features": features_name,
           "network": network, "resize": cfg.resize, "count": count, "subset": real_subset, "labels": labelled}
    real, real_labels, kept = reference_features(real_features, cfg.cache_dir, key, source.state())

    # The generated side: num_fake samples of the checkpoint's G, or the folder's images.
    fake_parts, logit_parts, label_parts = [], [], []
    if model is not None:
        latents, done = torch.Generator().manual_seed(cfg.seed), 0  # drawn on the CPU: the same on any device
        progress = tqdm(total=cfg.num_fake, desc="sampling and features", **bar)
        for batch in equal_batches(cfg.num_fake, cfg.batch_size):  # G normalises each batch with its statistics
            z = torch.randn(batch, model.hparams.nz, 1, 1, generator=latents).to(device)
            labels = torch.arange(done, done + batch, device=device) % classes if classes else None  # each class alike
            with torch.no_grad():
                features, logits = features_of(to_uint8(model(z, labels)), logits="is" in metrics)
            fake_parts.append(features.cpu())
            logit_parts.append(logits)
            label_parts.append(labels)
            done += batch
            progress.update(batch)
        progress.close()
        generated = f"{cfg.num_fake:,} samples of {cfg.ckpt_path} (seed {cfg.seed})"
    else:
        samples = Decoded(samples, size, channels)
        count_fake = min(cfg.num_fake, len(samples))
        # Fewer than the folder holds: a seeded random draw, never the first num_fake in sorted
        # order (in a folder sorted by class, a few classes); all of them: in order, as torch-fidelity.
        chosen = torch.arange(count_fake) if count_fake == len(samples) else draw(len(samples), count_fake,
                                                                                   cfg.subset_seed)
        progress = tqdm(total=count_fake, desc="samples' features", **bar)
        for batch in chosen.split(cfg.batch_size):
            images = torch.stack([samples.image(int(i)) for i in batch])
            features, logits = features_of(images, logits="is" in metrics)
            fake_parts.append(features.cpu())
            logit_parts.append(logits)
            progress.update(len(images))
        progress.close()
        generated = f"{count_fake:,} images of {cfg.samples}" + (
            f" (it holds fewer than num_fake={cfg.num_fake:,})" if count_fake < cfg.num_fake else
            f" (of {len(samples):,}, drawn with subset_seed={cfg.subset_seed})" if count_fake < len(samples) else "")
    fake = torch.cat(fake_parts)
    fake_logits = torch.cat(logit_parts).cpu() if "is" in metrics else None
    fake_labels = torch.cat(label_parts).cpu() if labelled else None
    values = scores(metrics, real.to(device), fake.to(device), fake_logits, real_labels, fake_labels,
                    kid_subset_size=cfg.kid_subset_size)

    protocol = {"features": features_name, "resize": cfg.resize, "image_size": size, "channels": channels,
                "num_fake": len(fake), "num_real": len(real), "real": datamodule.title, "real_subset": real_subset,
                "generated": generated, "subset_seed": cfg.subset_seed,
                "kid_subset_size": min(cfg.kid_subset_size, len(real), len(fake)), "precision_recall_k": 3,
                "density_coverage_k": 5, "inception_score_splits": 10, "reference_features": kept}
    print(f"{generated} against {real_subset} real images of {datamodule.title} at {size}x{size}; features: "
          f"{features_name}, resize: {cfg.resize}; real features {kept}")
    for metric, value in values.items():
        print(f"  {metric:<10} {value:.4f}")
    output = Path(cfg.output or (f"{Path(cfg.ckpt_path).with_suffix('')}.scores.json" if cfg.ckpt_path
                                 else f"{Path(cfg.samples).expanduser().resolve()}.scores.json")).expanduser()
    result = {"metrics": values, "protocol": protocol}
    output.write_text(json.dumps(result, indent=2) + "\n")
    print(f"wrote {output}")
    return result


@hydra.main(version_base="1.3", config_path="conf", config_name="evaluate")
def main(cfg: DictConfig) -> None:
    try:
        evaluate(cfg)
    except UsageError as error:
        raise SystemExit(f"error: {error}") from None


if __name__ == "__main__":
    main()
    if process.runs_as_program(__file__):  # not under pytest or pdb, which go on
        process.exit_now()
