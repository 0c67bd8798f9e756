"""What train.py says: one line as training starts (where the run goes and how to watch it) and
one as it ends (the final FID, where the results are, how to go on). Third-party lines that tell
a user of this template nothing are silenced, each narrowly, by its message and where it comes from."""

import logging
import re
import shlex
import warnings
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[1]  # src/dcgan


def quiet_third_parties() -> None:
    # Lightning advertises another product of its vendor when a Trainer starts.
    logging.getLogger("pytorch_lightning.utilities.rank_zero").addFilter(
        lambda record: "Tip: For seamless cloud logging" not in record.getMessage())
    # Lightning's own use of a torch pytree API that torch deprecated; nothing a user can change.
    warnings.filterwarnings("ignore", message=r".*isinstance\(treespec, LeafSpec\)",
                            module=r"pytorch_lightning\.")
    # Lightning's caution about an IterableDataset with __len__ under workers: data=stream's litdata
    # gives each worker its own share itself, so the length is right.
    warnings.filterwarnings("ignore", message=r"Your `IterableDataset` has `__len__` defined",
                            module=r"pytorch_lightning\.")


def our_warnings_in_one_line() -> None:
    """This template's warnings as one line, 'warning: <message>', like train.py's own: Python
    would add the file, the line and the source line that raised it, which tell a user nothing."""
    formatwarning = warnings.formatwarning

    def format_warning(message, category, filename, lineno, line=None) -> str:
        if PACKAGE in Path(filename).parents:
            return f"warning: {message}\n"
        return formatwarning(message, category, filename, lineno, line)

    warnings.formatwarning = format_warning


def starting(output_dir: Path, data: str, presets: dict[str, str], loggers: list[str]) -> None:
    """loggers: the kinds of the run's loggers, e.g. ["tensorboard", "csv"]."""
    chosen = ", ".join(f"{group}={choice}" for group, choice in presets.items())
    if "tensorboard" in loggers:
        watch = f"watch it with: tensorboard --logdir {output_dir}"
    else:
        watch = f"logging to {', '.join(loggers)}" if loggers else "nothing is logged"
    chosen = f" ({chosen})" if chosen else ""
    print(f"dcgan: training on {data}{chosen} into {output_dir}; {watch}", flush=True)


def finished(output_dir: Path, metrics: dict[str, float], checkpoints: Path | None, *more: str) -> None:
    """more: the options that train on from where this run stopped, e.g. trainer.max_epochs=120."""
    fid = f"val/fid {metrics['val/fid']:.2f}" if "val/fid" in metrics else "no val/fid"
    kept = [f"checkpoints in {checkpoints}"] if checkpoints is not None and checkpoints.is_dir() else []
    kept.append(f"{'figures and logs' if (output_dir / 'progress.gif').exists() else 'logs'} in {output_dir}")
    last = checkpoints / "last.ckpt" if checkpoints is not None else None
    resume = ""
    if last is not None and last.exists():
        resume = f"; go on with: {resume_command(last, *more)}"
    print(f"dcgan: done, {fid}; {', '.join(kept)}{resume}".rstrip(), flush=True)


def resume_command(checkpoint: Path, *more: str) -> str:
    """The command line that goes on from checkpoint with this run's options (a sweep job's own
    values) and more, quoted for a shell and for Hydra, so that it runs as printed: a sweep job's
    path holds '=' and ',', which Hydra reads as syntax unless quoted."""
    from hydra.core.hydra_config import HydraConfig

    more = tuple(option for option in more if option)
    given = list(HydraConfig.get().overrides.task) if HydraConfig.initialized() else []
    replaced = {"ckpt_path", *(option.split("=", 1)[0] for option in more)}
    kept = [option for option in given if option.split("=", 1)[0].lstrip("+~") not in replaced]
    return " ".join(["python train.py", *map(shlex.quote, [*kept, f"ckpt_path={hydra_quoted(checkpoint)}", *more])])


def hydra_quoted(value: object) -> str:
    """value as a Hydra override's value: as it is where Hydra reads it as one plain string, else quoted."""
    text = str(value)
    if re.fullmatch(r"[\w./~+:-]+", text):
        return text
    return '"' + text.replace('"', '\\"') + '"'
