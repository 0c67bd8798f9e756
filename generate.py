"""Images from a trained generator: python generate.py ckpt_path=PATH num_images=N output_dir=DIR seed=S"""

from pathlib import Path

import hydra
import torch
from omegaconf import DictConfig
from PIL import Image
from torchvision.utils import save_image

from dcgan.callbacks import to_grid
from dcgan.config import check_config
from dcgan.errors import UsageError
from dcgan.gan import DCGAN
from dcgan.latents import interpolation_latents
from dcgan.images import equal_batches, to_uint8

OPTIONS = {"ckpt_path": str, "num_images": int, "output_dir": str, "seed": int, "batch_size": int,
           "device": str, "interpolation_steps": int, "interpolation_rows": int}


def generate(cfg: DictConfig) -> list[Path]:
    """Write cfg.num_images PNGs, grid.png and (when asked) interpolation.png; return the PNGs."""
    check_config(cfg, OPTIONS)
    if cfg.num_images < 1 or cfg.batch_size < 1:
        raise UsageError(f"num_images={cfg.num_images} and batch_size={cfg.batch_size} must be at least 1")
    device = torch.device(cfg.device)
    model = DCGAN.from_checkpoint(cfg.ckpt_path).to(device)  # forward() normalises with batch statistics
    output_dir = Path(cfg.output_dir).expanduser()
    output_dir.mkdir(parents=True, exist_ok=True)
    latents = torch.Generator().manual_seed(cfg.seed)  # drawn on the CPU: the same on any device

    def sample(z: torch.Tensor) -> torch.Tensor:  # in batches of equal size: G normalises each with its statistics
        with torch.no_grad():
            return torch.cat([model(batch.to(device)).cpu() for batch in z.split(equal_batches(len(z), cfg.batch_size))])

    images = sample(torch.randn(cfg.num_images, model.hparams.nz, 1, 1, generator=latents))
    files = []
    for index, pixels in enumerate(to_uint8(images)):
        files.append(output_dir / f"{index:05d}.png")
        Image.fromarray(pixels.permute(1, 2, 0).squeeze(-1).numpy()).save(files[-1])
    save_image(to_grid(images[:64]), output_dir / "grid.png")
    if cfg.interpolation_steps > 0:
        endpoints = torch.randn(cfg.interpolation_rows, 2, model.hparams.nz, generator=latents)
        path = sample(interpolation_latents(endpoints, cfg.interpolation_steps))
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
