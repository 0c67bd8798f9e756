"""Images from a trained generator: python generate.py ckpt_path=PATH num_images=N output_dir=DIR seed=S
(class=K, truncation=T, seeds=0-63: see conf/generate.yaml and README.md)."""

from pathlib import Path

import hydra
import torch
from omegaconf import DictConfig
from PIL import Image
from torchvision.utils import save_image

from dcgan.callbacks.grids import to_grid
from dcgan.config import check_config
from dcgan.errors import UsageError
from dcgan.launch import process
from dcgan.model.checkpoints import from_checkpoint
from dcgan.model.sampling import equal_batches, interpolation_latents, parse_seeds, to_uint8, truncated_normal

OPTIONS = {"ckpt_path": str, "num_images": int, "output_dir": str, "seed": int, "batch_size": int,
           "device": str, "interpolation_steps": int, "interpolation_rows": int,
           "class": int | str | list[int | str] | None, "truncation": float | None, "seeds": int | list[int] | str | None}


def chosen_classes(choice: int | str | list[int | str] | None, names: list[str]) -> list[int] | None:
    """The labels images cycle through, of a checkpoint's classes `names`: class=K (a label),
    class=NAME, a list of them, or all (None: all; no classes: None)."""
    if not names:
        if choice is not None:
            raise UsageError(f"class={choice} needs a class-conditional checkpoint (trained with data.labels=true)")
        return None
    if choice in (None, "all"):
        return list(range(len(names)))
    labels = []
    for item in [choice] if isinstance(choice, (int, str)) else choice:
        if isinstance(item, int) and 0 <= item < len(names):
            labels.append(item)
        elif isinstance(item, str) and item in names:
            labels.append(names.index(item))
        else:
            raise UsageError(f"class={choice}: {item} is not one of this checkpoint's classes, "
                             f"{', '.join(f'{label}={name}' for label, name in enumerate(names))} (a label or a name)")
    return labels


def class_names(hparams: dict) -> list[str]:
    """What each label of a class-conditional checkpoint is; one written before the names were
    recorded knows only the labels."""
    return list(hparams.get("class_names") or map(str, range(hparams.get("num_classes", 0))))


def generate(cfg: DictConfig) -> list[Path]:
    """Write the PNGs (num_images of them, or one per seed), grid.png and (when asked)
    interpolation.png; return the PNGs."""
    check_config(cfg, OPTIONS)
    if cfg.num_images < 1 or cfg.batch_size < 1:
        raise UsageError(f"num_images={cfg.num_images} and batch_size={cfg.batch_size} must be at least 1")
    if cfg.truncation is not None and not cfg.truncation > 0:
        raise UsageError(f"truncation={cfg.truncation} must be positive, e.g. 0.7, or null for none")
    device = torch.device(cfg.device)
    model = from_checkpoint(cfg.ckpt_path).to(device)  # forward() normalises with batch statistics
    names = class_names(model.hparams)
    classes = chosen_classes(cfg["class"], names)
    if classes is not None:
        recorded = "" if model.hparams.get("class_names") else " (its class names were not recorded: labels only)"
        print(f"classes of this checkpoint: {', '.join(f'{label}={name}' for label, name in enumerate(names))}"
              f"{recorded}; generating {', '.join(names[label] for label in classes)}")
    output_dir = Path(cfg.output_dir).expanduser()
    output_dir.mkdir(parents=True, exist_ok=True)
    latents = torch.Generator().manual_seed(cfg.seed)  # drawn on the CPU: the same on any device

    def draw(count: int, generator: torch.Generator = latents) -> torch.Tensor:  # (count, nz, 1, 1)
        return truncated_normal((count, model.hparams.nz, 1, 1), cfg.truncation, generator)

    def labels(count: int) -> torch.Tensor | None:  # every chosen class in turn
        return None if classes is None else torch.tensor(classes).repeat(-(-count // len(classes)))[:count]

    def sample(z: torch.Tensor, y: torch.Tensor | None) -> torch.Tensor:  # G normalises each batch with its
        sizes = equal_batches(len(z), cfg.batch_size)  # statistics: batches of equal size, none tiny
        with torch.no_grad():
            return torch.cat([model(zb.to(device), None if y is None else yb.to(device)).cpu()
                              for zb, yb in zip(z.split(sizes), (y if y is not None else z).split(sizes))])

    if cfg.seeds is None:
        names = [f"{index:05d}" for index in range(cfg.num_images)]
        images = sample(draw(cfg.num_images), labels(cfg.num_images))
    else:  # each seed's image in a batch of its own, completed by the same other latents every time
        seeds = parse_seeds(cfg.seeds)
        context, context_labels = draw(cfg.batch_size - 1), labels(cfg.batch_size)
        names = [f"seed{seed:04d}" for seed in seeds]
        images = torch.cat([  # a seed's class: the chosen classes in turn, by the seed's number
            sample(torch.cat([draw(1, torch.Generator().manual_seed(seed)), context]),
                   None if classes is None else torch.tensor([classes[seed % len(classes)], *context_labels[1:]]))[:1]
            for seed in seeds])
    files = []
    for name, pixels in zip(names, to_uint8(images)):
        files.append(output_dir / f"{name}.png")
        Image.fromarray(pixels.permute(1, 2, 0).squeeze(-1).numpy()).save(files[-1])
    save_image(to_grid(images[:64]), output_dir / "grid.png")
    if cfg.interpolation_steps > 0:
        endpoints = draw(cfg.interpolation_rows * 2).view(cfg.interpolation_rows, 2, model.hparams.nz)
        row_labels = labels(cfg.interpolation_rows)
        path = sample(interpolation_latents(endpoints, cfg.interpolation_steps),
                      None if row_labels is None else row_labels.repeat_interleave(cfg.interpolation_steps))
        save_image(to_grid(path, nrow=cfg.interpolation_steps), output_dir / "interpolation.png")
    return files


@hydra.main(version_base="1.3", config_path="conf", config_name="generate")
def main(cfg: DictConfig) -> None:
    try:
        files = generate(cfg)
    except UsageError as error:
        raise SystemExit(f"error: {error}") from None
    print(f"wrote {len(files)} images and grid.png to {Path(cfg.output_dir).expanduser()}")


if __name__ == "__main__":
    main()
    if process.runs_as_program(__file__):  # not under pytest or pdb, which go on
        process.exit_now()
