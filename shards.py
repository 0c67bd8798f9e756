"""Any data preset's images as litdata shards, for data=stream (src/dcgan/data/stream.py):
python shards.py data=<preset> data.root=... data.image_size=64 output_dir=DIR (conf/shards.yaml)."""

import hydra
from omegaconf import DictConfig

from dcgan.config import check_config, instantiate_node
from dcgan.errors import UsageError


def write(cfg: DictConfig) -> None:
    from dcgan.data.shards import write_shards

    check_config(cfg, {"output_dir": str, "chunk_bytes": str})
    datamodule = instantiate_node(cfg.data, "data")
    count = write_shards(datamodule, cfg.output_dir, cfg.chunk_bytes)
    print(f"dcgan: wrote {count:,} of the {len(datamodule.source):,} images of {datamodule.source.title} at "
          f"{datamodule.image_size}x{datamodule.image_size} to {cfg.output_dir}; train on them with: "
          f"python train.py data=stream data.root={cfg.output_dir} data.image_size={datamodule.image_size} "
          f"data.channels={datamodule.channels}", flush=True)


@hydra.main(config_path="conf", config_name="shards", version_base=None)
def main(cfg: DictConfig) -> None:
    try:
        write(cfg)
    except UsageError as error:  # inside hydra.main: outside it, Hydra has already printed a traceback
        raise SystemExit(f"error: {error}") from None


if __name__ == "__main__":
    main()
