"""Checkpoints of the GAN system as a user hands them in: read without running their code, rebuilt
for sampling, and checked before a run resumes from one, each problem one line naming it."""

from pathlib import Path

import torch

from dcgan.errors import UsageError
from dcgan.model.gan import DCGAN
from dcgan.model.networks.parts import current_spec

# What a checkpoint's weights and step counts are shaped by, and where a run's config sets it.
RESUMED_AS_TRAINED = {
    "nz": "model.nz", "ngf": "model.ngf", "ndf": "model.ndf", "channels": "data.channels",
    "image_size": "data.image_size", "d_norm": "model.d_norm", "spectral_norm": "model.spectral_norm",
    "generator": "model.generator", "discriminator": "model.discriminator", "ema_decay": "model.ema_decay",
    "num_classes": "classes (data.labels)",
    "n_critic": "model.n_critic",  # global_step and the loader's position count its steps
    "lr_decay": "model.lr_decay",  # the schedulers' states in the checkpoint (none: there are none)
}
MIRRORED = {"nz", "ngf", "ndf", "channels", "image_size", "norm", "num_classes"}  # network arguments the keys above set


def read_checkpoint(path: str | Path) -> dict:
    """A checkpoint of this template, on the CPU whatever it trained on, read without running
    pickled code (weights_only); anything else is a one-line UsageError."""
    path = Path(path).expanduser()
    if not path.is_file():
        raise UsageError(f"ckpt_path={path} does not exist: pass a .ckpt from a run's checkpoints/")
    try:
        checkpoint = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as error:  # not a torch file, or one that needs code to load
        raise UsageError(f"ckpt_path={path} is not a checkpoint of this template ({type(error).__name__})") from None
    hparams, state = checkpoint.get("hyper_parameters"), checkpoint.get("state_dict")
    if not isinstance(hparams, dict) or not isinstance(state, dict) or not any(k.startswith("generator.") for k in state):
        raise UsageError(f"ckpt_path={path} is not a checkpoint of this template: it holds no DCGAN generator")
    for name in ("generator", "discriminator"):  # the networks' specs, as the package names them now
        if isinstance(hparams.get(name), dict):
            hparams[name] = current_spec(hparams[name])
    return checkpoint


def from_checkpoint(path: str | Path) -> DCGAN:
    """The trained system a checkpoint holds, on the CPU, for sampling: every tensor of G (and
    its average) must fit; D's need not (sampling never runs D, and a checkpoint from before
    spectral norm covered the class embedding has D's in another form)."""
    checkpoint = read_checkpoint(path)
    model = DCGAN(**{**checkpoint["hyper_parameters"], "compile": False})
    missing, unexpected = model.load_state_dict(checkpoint["state_dict"], strict=False)
    broken = [key for key in [*missing, *unexpected] if not key.startswith("discriminator.")]
    if broken:
        raise UsageError(f"ckpt_path={path} does not fit the networks it names ({', '.join(broken[:3])}): "
                         "was it edited, or written by networks of your own that have changed since?")
    return model


def check_resumable(path: str | Path, model: DCGAN) -> None:
    """A one-line error, before any work, when a run built as `model` cannot go on from the
    checkpoint: other weights' shapes or step counts, other class names, other tensors."""
    checkpoint = read_checkpoint(path)
    trained = checkpoint["hyper_parameters"]
    theirs, ours = _resumed_as_trained(trained), _resumed_as_trained(model.hparams)
    differences = [f"{key}={theirs[key]} (this run: {ours.get(key)})" for key in theirs if theirs[key] != ours.get(key)]
    if differences:
        raise UsageError(f"ckpt_path={path} was trained with {', '.join(differences)}: pass the same values to resume it")
    names, now = trained.get("class_names"), model.hparams.get("class_names")
    if names and now and names != now:  # the same count (checked above), other folders
        renamed = [f"{label} was {old!r}, is now {new!r}" for label, (old, new) in enumerate(zip(names, now)) if old != new]
        raise UsageError(f"ckpt_path={path} was trained on other classes: label {'; label '.join(renamed[:3])} "
                         "(the class folders of data.root, in sorted order): give the folders their names back "
                         "to resume, or start a new run")
    saved, expected = set(checkpoint["state_dict"]), set(model.state_dict())
    if saved != expected:
        extra, lacking = sorted(saved - expected), sorted(expected - saved)
        raise UsageError(f"ckpt_path={path} holds other tensors than this model "
                         f"({', '.join([*(f'+{k}' for k in extra[:2]), *(f'-{k}' for k in lacking[:2])])}): it was "
                         "written by another version of the networks and cannot be resumed (generate.py still "
                         "samples from it)")


def _resumed_as_trained(hparams: dict) -> dict[str, object]:
    """What a resume must keep, key by key; a network's own arguments as model.generator.<arg>
    (but those the top-level keys already name); ema_decay: only whether there is an average. A
    checkpoint older than a key does not record it and is not judged by it."""
    flat = {}
    for name, key in RESUMED_AS_TRAINED.items():
        value = hparams.get(name)
        if isinstance(value, dict):
            flat |= {f"{key}.{arg}": v for arg, v in value.items() if arg not in MIRRORED}
        elif name in hparams:
            flat[key] = ("set" if value is not None else None) if name == "ema_decay" else value
    return flat
