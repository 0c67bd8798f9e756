"""Train DCGAN on an image folder: python train.py [key=value ...] (see README.md)."""

import contextlib
import json
import math
import signal
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Literal

import hydra
from hydra.core.hydra_config import HydraConfig
from hydra.types import RunMode
from omegaconf import DictConfig, OmegaConf

from dcgan.callbacks import console
from dcgan.config import check_config, instantiate_node
from dcgan.errors import UsageError
from dcgan.launch import process, slurm
from dcgan.launch.job import restart_checkpoint
from dcgan.launch.sweep import UNRANKED
from dcgan.launch.torchrun import under_torchrun

if TYPE_CHECKING:
    import pytorch_lightning as pl

TOP_LEVEL = {"seed": int, "ckpt_path": str | None, "objective": str,
             "objective_direction": Literal["minimize", "maximize"]}
process.prepare()  # the config's resolvers and the console's filters (a submitit job calls it too)
PRESETS = ("experiment", "model", "trainer", "logger", "debug")  # config groups the start line names


def train(cfg: DictConfig) -> dict[str, float]:
    """Build everything the config names, fit, and return the final logged metrics."""
    # Lightning takes seconds to import: imported here, a mistyped command line or a refused sweep
    # is said at once, before them
    import pytorch_lightning as pl
    from pytorch_lightning.loggers.logger import DummyLogger

    from dcgan.callbacks.checkpoints import RunCheckpoints
    from dcgan.callbacks.quality import QualityMetrics
    from dcgan.callbacks.sinks import check_installed, finish
    from dcgan.launch.ddp import register as register_gan_ddp
    from dcgan.model.checkpoints import check_resumable

    register_gan_ddp()  # trainer.devices > 1: DDP over G and D separately (src/dcgan/launch/ddp.py)
    check_config(cfg, TOP_LEVEL)
    check_installed(cfg.get("logger"))
    pl.seed_everything(cfg.seed, workers=True)
    output_dir = Path(cfg.paths.output_dir)
    # TorchElastic restarted the job (torchrun --max-restarts) or SLURM requeued it: go on from its checkpoint
    restarted, by = (None, "") if cfg.ckpt_path else restart_checkpoint(
        output_dir, OmegaConf.select(cfg, "callbacks.checkpoints"))
    ckpt_path = cfg.ckpt_path or restarted

    datamodule = instantiate_node(cfg.data, "data")
    classes = list(getattr(datamodule, "classes", None) or [])  # the data's class names, with labels
    model = instantiate_node(cfg.model, "model", num_classes=len(classes), class_names=classes or None)
    if ckpt_path:
        check_resumable(ckpt_path, model)
    callbacks = [instantiate_node(node, f"callbacks.{name}") for name, node in cfg.callbacks.items() if node]
    loggers = [instantiate_node(node, f"logger.{name}") for name, node in (cfg.get("logger") or {}).items() if node]
    trainer = instantiate_node(cfg.trainer, "trainer", callbacks=callbacks, logger=loggers or False)
    if trainer.is_global_zero:  # the resolved options, beside the run they produced
        output_dir.mkdir(parents=True, exist_ok=True)
        OmegaConf.save(cfg, output_dir / "config.yaml", resolve=True)
        kinds = [type(lg).__name__.removesuffix("Logger").lower() for lg in trainer.loggers
                 if not isinstance(lg, DummyLogger)]  # fast_dev_run's stand-in logs nothing
        console.starting(output_dir, describe_data(cfg, datamodule, trainer), chosen_presets(), kinds)
        if restarted:
            print(f"dcgan: {by}: going on from {restarted}", flush=True)

    saver = next((cb for cb in callbacks if isinstance(cb, RunCheckpoints)), None)
    # a full disk under a logger or the run's own files: one line, as under the checkpoints
    with saver.disk_full_said(output_dir) if saver else contextlib.nullcontext():
        try:
            with slurm.requeue_on_warning():  # USR1/USR2 from SLURM: checkpoint, then requeue
                trainer.fit(model, datamodule=datamodule, ckpt_path=ckpt_path and Path(ckpt_path).expanduser(),
                            weights_only=True)  # a checkpoint runs no pickled code
        except BaseException:
            with contextlib.suppress(OSError):  # a logger that cannot flush to a full disk: the error says why
                finish(loggers, failed=True)
            raise
        finish(loggers)
        metrics = {name: float(value) for name, value in trainer.callback_metrics.items()}
        if trainer.is_global_zero:  # what a sweep's summary reads
            (output_dir / "metrics.json").write_text(json.dumps(metrics, indent=1) + "\n")
            if cfg.objective not in metrics:  # the run is done and saved, but a sweep cannot rank it
                why = [cb.unavailable for cb in callbacks if isinstance(cb, QualityMetrics) and cb.unavailable]
                missing = (f"objective={cfg.objective} was not logged{f' ({why[0]})' if why else ''}, "
                           f"so this run is not ranked; logged: {', '.join(sorted(metrics))}")
                (output_dir / UNRANKED).write_text(missing + "\n")
                print(f"warning: {missing}", file=sys.stderr)
            console.finished(output_dir, metrics, saver and saver.dirpath, *longer(trainer))
    return metrics


def longer(trainer: "pl.Trainer") -> list[str]:
    """The options that make a resumed run train as long again as this one did: each limit it was
    given doubled (max_epochs, max_steps, max_time), since any of them may be the one that stopped it,
    and a resumed run counts all three from its checkpoint (Lightning's Timer keeps the time spent)."""
    from pytorch_lightning.callbacks import Timer

    more = [f"trainer.{name}={2 * limit}" for name in ("max_epochs", "max_steps")
            if (limit := getattr(trainer, name)) is not None and limit > 0]
    timer = next((cb for cb in trainer.callbacks if isinstance(cb, Timer)), None)
    if timer is not None and timer._duration is not None:  # Lightning keeps the limit as seconds only
        # it stops at the first iteration's end past the limit: as long again is twice the time spent
        days, rest = divmod(math.ceil(2 * max(timer._duration, timer.time_elapsed())), 86400)
        more.append(f"trainer.max_time={days:02d}:{rest // 3600:02d}:{rest % 3600 // 60:02d}:{rest % 60:02d}")
    return more


def describe_data(cfg: DictConfig, datamodule: "pl.LightningDataModule", trainer: "pl.Trainer") -> str:
    """e.g. 'data/digits at 32x32, greyscale with class labels, 1,797 images cached on the device (1.8 MB)':
    what the start line says is trained on."""
    size, channels = (OmegaConf.select(cfg, f"data.{key}") for key in ("image_size", "channels"))
    labels = " with class labels" if OmegaConf.select(cfg, "data.labels") else ""
    if not hasattr(datamodule, "describe"):  # a DataModule of the user's own
        return f"{type(datamodule).__name__} at {size}x{size}"
    return (f"{datamodule.title} at {size}x{size}, {'greyscale' if channels == 1 else 'RGB'}{labels}, "
            f"{datamodule.describe(trainer)}")


def chosen_presets() -> dict[str, str]:
    """The config groups' choices this run was composed with (outside Hydra, as in tests: none)."""
    if not HydraConfig.initialized():
        return {}
    choices = HydraConfig.get().runtime.choices
    return {group: choices[group] for group in PRESETS if choices.get(group) not in (None, "default")}


@hydra.main(version_base="1.3", config_path="conf", config_name="config")
def main(cfg: DictConfig) -> float:
    """Train and return the objective, which sweepers (Optuna) minimise or maximise."""
    if under_torchrun() and HydraConfig.get().mode == RunMode.MULTIRUN:  # hparams_search= sweeps too
        raise SystemExit(SWEEP_UNDER_TORCHRUN)
    from pytorch_lightning.utilities.exceptions import SIGTERMException

    try:
        return train(cfg).get(cfg.objective, float("nan"))  # NaN: not ranked, and why is in unranked.txt
    except UsageError as error:
        if HydraConfig.get().mode == RunMode.MULTIRUN:
            raise  # this job fails, the sweep goes on and its summary says why
        raise SystemExit(f"error: {error}") from None  # the user's mistake: one line, no traceback
    except SIGTERMException:  # SIGTERM, Ctrl-C or SLURM's warning: last.ckpt was written, its path printed
        slurm.requeue_if_asked()
        raise SystemExit(128 + signal.SIGTERM) from None


def overrides(argv: list[str]) -> dict[str, str]:
    """The command line's key=value overrides by key (+key and ~key as key; flags as key: '')."""
    return dict(argument.lstrip("+~").partition("=")[::2] for argument in argv[1:])


def folder_unless_chosen(argv: list[str]) -> list[str]:
    """`python train.py data.root=~/photos` trains on that folder with the folder preset (64x64 RGB):
    the built-in digits are the default only while no data.root is given (or data=digits chosen)
    and no experiment chosen."""
    given = overrides(argv)
    if "data.root" in given and "experiment" not in given and given.get("data") != "digits":
        return [*argv, "experiment=folder"]
    return argv


def sweeping(argv: list[str]) -> bool:
    """Whether this command line asks Hydra for a sweep: -m, a hyperparameter search, MULTIRUN."""
    given = overrides(argv)
    return bool({"-m", "--multirun"} & given.keys() or given.get("hparams_search", "null") != "null"
                or given.get("hydra.mode") == "MULTIRUN")


SWEEP_UNDER_TORCHRUN = ("error: -m (a Hydra sweep) cannot run under torchrun: every rank would run every job "
                        "and their DDP groups would not meet; start one torchrun per job, or sweep with "
                        "python train.py -m trainer.devices=N, which starts each job's ranks itself")


def check_launcher(argv: list[str]) -> None:
    """hydra/launcher=slurm|local need the slurm extra: without it, one line saying so (Hydra would
    say that a config it cannot know of is missing)."""
    chosen = overrides(argv).get("hydra/launcher")
    if chosen in ("slurm", "local"):
        try:
            import hydra_plugins.hydra_submitit_launcher  # noqa: F401
        except ImportError:
            raise SystemExit(f"error: hydra/launcher={chosen} needs the slurm extra (submitit), which is not "
                             'installed: pip install -e ".[slurm]"') from None


def trainer_arguments(argv: list[str]) -> list[str]:
    """`trainer.<name>=<value>` for any argument of Lightning's Trainer, as README promises: Hydra
    adds a key that conf/trainer/ does not list only when asked with ++ (add or override), so such
    an override gets one; a name that is no argument of the Trainer is one line with the closest."""
    listed = OmegaConf.load(Path(__file__).parent / "conf" / "trainer" / "default.yaml")
    unlisted = {i: name for i, argument in enumerate(argv) if i and not argument.startswith(("+", "~"))
                and (name := argument.partition("=")[0].removeprefix("trainer.")) != argument.partition("=")[0]
                and "=" in argument and name.split(".")[0] not in listed}
    if not unlisted:
        return argv
    import difflib
    import inspect

    from pytorch_lightning import Trainer  # seconds; only for a key conf/trainer/ does not list

    known = [name for name in inspect.signature(Trainer.__init__).parameters if name != "self"]
    for name in unlisted.values():
        if name.split(".")[0] not in known:
            close = difflib.get_close_matches(name, known, n=1)
            hint = f"did you mean trainer.{close[0]}?" if close else f"valid: {', '.join(known)}"
            raise SystemExit(f"error: trainer.{name} is not an argument of pytorch_lightning.Trainer: {hint}")
    return [f"++{argument}" if i in unlisted else argument for i, argument in enumerate(argv)]


if __name__ == "__main__":
    if under_torchrun() and sweeping(sys.argv):
        raise SystemExit(SWEEP_UNDER_TORCHRUN)
    check_launcher(sys.argv)
    sys.argv = trainer_arguments(folder_unless_chosen(sys.argv))
    main()
    if process.runs_as_program(__file__):  # not under pytest or pdb, which go on
        process.exit_now()
