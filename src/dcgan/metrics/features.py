"""Feature spaces for FID and KID: Inception-v3 (the standard, weights fetched once) and a small
classifier of the built-in digits (trained once, offline). Each maps uint8 images (B, C, H, W) to
(B, num_features), says how many channels it reads, and turns its features into class logits
(for the Inception Score, with no second pass)."""

import hashlib
import io
import urllib.error
import urllib.request
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torch_fidelity.feature_extractor_inceptionv3 import FeatureExtractorInceptionV3

from dcgan.data.folder import Folder
from dcgan.data.images import Decoded
from dcgan.files import replaced_atomically

INCEPTION_URL = "https://github.com/toshas/torch-fidelity/releases/download/v0.2.0/weights-inception-2015-12-05-6726825d.pth"
INCEPTION_SHA256 = "6726825d0af5f729cebd5821db510b11b1cfad8faad88a03f1befd49fb9129b2"  # 95,628,359 bytes


class FeaturesUnavailable(RuntimeError):
    """The feature extractor cannot be built here (e.g. its weights cannot be fetched)."""


class InceptionV3(FeatureExtractorInceptionV3):
    """torch-fidelity's Inception-v3 feature extractor, its forward (the bilinear resize of
    TensorFlow 1 to 299x299, whatever torchmetrics does) and state dict unchanged, giving its 2048
    pool features alone, plus its class logits."""

    num_features = 2048
    in_channels = 3
    input_size = 299  # what it resizes images to (metrics/resize.py's protocols)

    def forward(self, images: Tensor) -> Tensor:
        """uint8 (B, 3, H, W) -> float32 features (B, 2048)."""
        return super().forward(images)[0]

    def logits(self, features: Tensor) -> Tensor:
        """(B, 2048) features -> (B, 1008) logits: the fc layer without its bias, torch-fidelity's
        "logits_unbiased" by the same product, as the original Inception Score code (so scores
        compare with papers')."""
        return features.mm(self.fc.weight.T)


def inception(weights: str | None = None) -> InceptionV3:
    """torch-fidelity's Inception-v3 (2048 features), weights from `weights` or torch's hub cache,
    where they are fetched once from torch-fidelity's release. Either file must be exactly that
    release's (its SHA-256): FID is only comparable in those features, and a file that is checked
    cannot carry code to run."""
    path = Path(weights).expanduser() if weights else Path(torch.hub.get_dir()) / "checkpoints" / Path(INCEPTION_URL).name
    fetched = not path.exists()
    if not fetched:
        data = path.read_bytes()
    else:
        try:
            with urllib.request.urlopen(INCEPTION_URL, timeout=60) as response:
                data = response.read()  # 92 MB, fetched once
        except (urllib.error.URLError, OSError) as error:
            raise FeaturesUnavailable(
                f"FID/KID need the Inception weights {path.name}, which could not be fetched ({error}): "
                f"download {INCEPTION_URL} to {path}, or set callbacks.quality.features.weights=<that file>"
            ) from None
    if hashlib.sha256(data).hexdigest() != INCEPTION_SHA256:
        raise FeaturesUnavailable(
            f"the download of {INCEPTION_URL} was damaged (its SHA-256 is not {INCEPTION_SHA256}): try again" if fetched
            else f"{path} is not the FID Inception weights (its SHA-256 is not {INCEPTION_SHA256}): "
                 f"replace it with {INCEPTION_URL}"
        )
    if fetched:
        path.parent.mkdir(parents=True, exist_ok=True)
        with replaced_atomically(path) as partial:
            partial.write_bytes(data)
    # torch-fidelity unpickles the weights with weights_only=False: give it the bytes just checked
    return InceptionV3(name="inception-v3-compat", features_list=["2048"],
                       feature_extractor_weights_path=io.BytesIO(data))


class DigitClassifier(nn.Module):
    """A small CNN for the built-in digits: its last hidden layer is the feature space for digit
    FID, its head classifies generated digits (to see which classes G covers)."""

    num_features = 128
    in_channels = 1
    input_size = 16

    def __init__(self):
        super().__init__()
        self.body = nn.Sequential(
            nn.Conv2d(1, 32, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),  # (B, 32, 8, 8)
            nn.Conv2d(32, 64, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),  # (B, 64, 4, 4)
            nn.Flatten(), nn.Linear(64 * 16, 128), nn.ReLU(),  # (B, 128): where strokes are matters
        )
        self.head = nn.Linear(128, 10)
        self.register_buffer("holdout_accuracy", torch.tensor(0.0))

    def forward(self, images: Tensor) -> Tensor:
        """uint8 (B, 1, H, W) -> features (B, 128), at 16x16 (the scans are 8x8)."""
        x = images.float() / 127.5 - 1
        if x.shape[-1] != 16:
            x = F.interpolate(x, size=(16, 16), mode="bilinear", antialias=True)
        return self.body(x)

    def logits(self, features: Tensor) -> Tensor:
        """(B, 128) features -> (B, 10) digit logits."""
        return self.head(features)

    def classify(self, images: Tensor) -> Tensor:
        return self.logits(self(images)).argmax(1)


def digit_classifier(root: str = "data/digits", weights: str | None = None, epochs: int = 15) -> DigitClassifier:
    """The classifier read from `weights`, or trained (seeded, a few seconds on a CPU) on 80% of
    the digits under root/<label>/, scored on the rest, and kept in root/.classifier.pt."""
    root_path = Path(root).expanduser()
    cached = Path(weights).expanduser() if weights else root_path / ".classifier.pt"
    with torch.random.fork_rng():  # its initial weights too: the same feature space whatever the run's seed
        torch.manual_seed(0)
        model = DigitClassifier()
    if cached.exists():
        model.load_state_dict(torch.load(cached, map_location="cpu", weights_only=True))
        return model.eval().requires_grad_(False)
    digits = Folder(root_path)
    files = digits.files
    dataset = Decoded(digits, 16, 1)
    images = torch.stack([dataset[i] for i in range(len(files))])  # (N, 1, 16, 16) uint8
    labels = torch.tensor([int(path.parent.name) for path in files])
    generator = torch.Generator().manual_seed(0)
    order = torch.randperm(len(files), generator=generator)
    train, holdout = order[: len(files) * 4 // 5], order[len(files) * 4 // 5 :]
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)
    for _ in range(epochs):
        for batch in train[torch.randperm(len(train), generator=generator)].split(64):
            loss = F.cross_entropy(model.logits(model(images[batch])), labels[batch])
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
    with torch.no_grad():
        model.holdout_accuracy.fill_((model.classify(images[holdout]) == labels[holdout]).float().mean())
    with replaced_atomically(cached) as partial:
        torch.save(model.state_dict(), partial)
    return model.eval().requires_grad_(False)


def match_channels(images: Tensor, channels: int) -> Tensor:
    """(B, C, H, W) -> (B, channels, H, W): grey repeated to RGB, or RGB averaged to grey."""
    if images.shape[1] == channels:
        return images
    if channels == 3:
        return images.expand(-1, 3, -1, -1)
    return images.float().mean(1, keepdim=True).round().to(images.dtype)


@torch.no_grad()
def extract(extractor: nn.Module, images: Tensor, logits: bool = False) -> tuple[Tensor, Tensor | None]:
    """uint8 images (B, C, H, W) -> their features (B, extractor.num_features), in float64 as FID
    takes them, and with logits=True the extractor's class logits (B, K) from those features (the
    Inception Score's): one pass through the extractor either way."""
    features = extractor(match_channels(images, extractor.in_channels))
    return features.double(), extractor.logits(features).double() if logits else None
