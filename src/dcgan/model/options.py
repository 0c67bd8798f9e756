"""The GAN system's options that would otherwise fail deep inside training: checked when it is
built, before any work, each with one line naming the option and what it accepts."""

from typing import Any

from dcgan.errors import UsageError
from dcgan.model.ada import ADA_PIPELINES
from dcgan.model.losses import LOSSES
from dcgan.model.schedule import LR_DECAYS

COMPILE_MODES = ("default", "max-autotune-no-cudagraphs")  # the others replay CUDA graphs, see the error below


def check_options(options: dict[str, Any]) -> None:
    """A one-line UsageError, naming the option, for a value DCGAN cannot train with."""
    for name in ("nz", "ngf", "ndf", "n_critic", "r1_interval", "ada_interval"):
        if options[name] < 1:
            raise UsageError(f"{name} must be a positive integer, got {options[name]}")
    for name in ("lr", "lr_g", "lr_d"):
        if options[name] is not None and not options[name] > 0:
            raise UsageError(f"{name} must be positive, e.g. 2e-4, got {options[name]}")
    for name, example in (("beta1", 0.5), ("beta2", 0.999)):
        if not 0 <= options[name] < 1:
            raise UsageError(f"{name} must be in [0, 1), e.g. {example}, got {options[name]}")
    for name in ("r1_gamma", "gp_lambda"):
        if options[name] < 0:
            raise UsageError(f"{name} must be 0 (off) or positive, e.g. 10, got {options[name]}")
    if options["loss"] not in LOSSES:
        raise UsageError(f"loss={options['loss']!r} is not one of {', '.join(LOSSES)}")
    if options["lr_decay"] not in LR_DECAYS:
        raise UsageError(f"lr_decay={options['lr_decay']!r} is not one of {', '.join(LR_DECAYS)}")
    if not isinstance(options["g_fresh_latents"], bool):
        raise UsageError(f"g_fresh_latents={options['g_fresh_latents']!r} must be true or false")
    if options["spectral_norm"] not in ("none", "d", "g", "both"):
        raise UsageError(f"spectral_norm={options['spectral_norm']!r} is not one of none, d, g, both")
    if options["ada_target"] is not None and not 0 < options["ada_target"] < 1:
        raise UsageError(f"ada_target={options['ada_target']} must be in (0, 1), e.g. 0.6 (the ADA paper's), or null for none")
    if not 0 <= options["ada_p"] <= 1:
        raise UsageError(f"ada_p={options['ada_p']} must be in [0, 1]: the probability ADA starts from")
    if not options["ada_kimg"] > 0:
        raise UsageError(f"ada_kimg must be positive, e.g. 500 (the ADA paper's), got {options['ada_kimg']}")
    if options["ada_pipeline"] not in ADA_PIPELINES:
        raise UsageError(f"ada_pipeline={options['ada_pipeline']!r} is not one of {', '.join(ADA_PIPELINES)} "
                         "(bgc: the ADA paper's; diffaugment: model.augment's policies, each with probability p)")
    if options["ada_target"] is not None and options["augment"] and options["ada_pipeline"] != "diffaugment":
        raise UsageError(f"augment={options['augment']} picks DiffAugment policies, which ADA's {options['ada_pipeline']} "
                         "pipeline does not take: set model.augment=null, or model.ada_pipeline=diffaugment to adapt them")
    ema_decay, compile = options["ema_decay"], options["compile"]
    if ema_decay is not None and not 0 < ema_decay < 1:
        raise UsageError(f"ema_decay={ema_decay} must be in (0, 1), e.g. 0.999, or null for none")
    if isinstance(compile, str) and compile not in COMPILE_MODES:
        raise UsageError(
            f"compile={compile!r} is not a mode that works here: true, false or one of {', '.join(COMPILE_MODES)} "
            "(reduce-overhead and max-autotune replay CUDA graphs, which cannot run D twice before its backward)"
        )
