"""What train.py says: one line as training starts (where the run goes and how to watch it) and
one as it ends (the final FID, where the results are, how to go on). Third-party lines that tell
a user of this template nothing are silenced, each narrowly, by its message and where it comes from."""

import logging
import warnings
from pathlib import Path


def quiet_third_parties() -> None:
    # Lightning advertises another product of its vendor when a Trainer starts.
    logging.getLogger("pytorch_lightning.utilities.rank_zero").addFilter(
        lambda record: "Tip: For seamless cloud logging" not in record.getMessage())
    # Lightning's own use of a torch pytree API that torch deprecated; nothing a user can change.
    warnings.filterwarnings("ignore", message=r".*isinstance\(treespec, LeafSpec\)",
                            module=r"pytorch_lightning\.")


def starting(output_dir: Path, data: str, presets: dict[str, str]) -> None:
    chosen = ", ".join(f"{group}={choice}" for group, choice in presets.items())
    print(f"dcgan: training on {data}{f' ({chosen})' if chosen else ''} into {output_dir}; "
          f"watch it with: tensorboard --logdir {output_dir}", flush=True)


def finished(output_dir: Path, metrics: dict[str, float], checkpoints: Path | None, epochs: int) -> None:
    fid = f"val/fid {metrics['val/fid']:.2f}" if "val/fid" in metrics else "no val/fid"
    saved = f"checkpoints in {checkpoints}, " if checkpoints and checkpoints.is_dir() else ""
    resumable = checkpoints is not None and (checkpoints / "last.ckpt").exists()
    resume = (f"; go on with: python train.py <the same options> ckpt_path={checkpoints / 'last.ckpt'} "
              f"trainer.max_epochs={2 * epochs}" if resumable else "")
    print(f"dcgan: done, {fid}; {saved}figures and logs in {output_dir}{resume}", flush=True)
