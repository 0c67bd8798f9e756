"""A user's own G and D, from their own config directory: they train and generate, or fail before any work."""

from pathlib import Path

import pytest
import torch

from conftest import ROOT, run_script
from dcgan.errors import UsageError
from train import train

USER_CONF = f"hydra.searchpath=[file://{ROOT / 'tests' / 'conf'}]"  # a user's own config directory


def test_a_users_own_networks_train_and_generate_from_their_checkpoint(run_config, tmp_path: Path, monkeypatch):
    train(run_config(USER_CONF, "model/generator=mlp", "model/discriminator=mlp", "~callbacks.figures"))
    checkpoint = tmp_path / "run" / "checkpoints" / "last.ckpt"
    hparams = torch.load(checkpoint, weights_only=True)["hyper_parameters"]
    assert hparams["generator"] == {"_target_": "user_networks.MLPGenerator", "nz": 16, "channels": 1,
                                    "image_size": 16, "hidden": 64}
    monkeypatch.chdir(tmp_path)  # python generate.py, with tests/ (the user's networks) importable
    assert run_script("generate.py", f"ckpt_path={checkpoint}", "num_images=4", f"output_dir={tmp_path / 'out'}") is None
    assert len(list((tmp_path / "out").glob("0*.png"))) == 4

    with pytest.raises(UsageError, match="model.generator.hidden=64 \\(this run: 32\\)"):  # resume names the change
        train(run_config(USER_CONF, "model/generator=mlp", "model/discriminator=mlp", "model.generator.hidden=32",
                         f"ckpt_path={checkpoint}", f"paths.output_dir={tmp_path / 'again'}"))


@pytest.mark.parametrize(("override", "message"), [
    ("+model.generator.out_scale=100", "model.generator: G\\(z\\) must be images in \\[-1, 1\\] \\(end it with Tanh\\)"),
    ("model.generator.image_size=32", "model.generator: G\\(z\\) for z of shape \\(2, 16, 1, 1\\) must be images of "
                                      "shape \\(2, 1, 16, 16\\), got \\(2, 1, 32, 32\\)"),
    ("+model.discriminator.flat=false", "model.discriminator: D\\(x\\) .* must be one logit per image, of shape "
                                        "\\(2,\\), got \\(2, 1\\)"),
])
def test_networks_that_break_the_contract_are_one_line_before_training(run_config, tmp_path: Path, override, message):
    with pytest.raises(UsageError, match=message):
        train(run_config(USER_CONF, "model/generator=mlp", "model/discriminator=mlp", override))
    assert not (tmp_path / "run").exists()
