"""What DDP's find_unused_parameters costs a GAN, against dcgan's one-DDP-per-network strategy.

1. Time: runs train.py on the built-in digits with 2 processes (gloo on CPU, NCCL on GPUs),
   alternating the two strategies, and times iterations from the wall-clock stamps of the
   per-iteration scalars in each run's TensorBoard file (start-up excluded).
2. Traffic: bytes all-reduced per iteration at the seed's 64x64 model, counted by a DDP
   communication hook, with the GAN step run as each strategy runs it (2 CPU processes, gloo).

    python benchmarks/ddp_overhead.py [--accelerator cpu] [--repeats 2] [--iterations 60] [KEY=VALUE ...]

KEY=VALUE are train.py overrides, e.g. the seed's model: data.image_size=64 model.ngf=64 model.ndf=64
"""

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

import torch
import torch.distributed as dist
import torch.multiprocessing as mp
from pytorch_lightning.overrides.distributed import prepare_for_backward
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator
from torch import nn
from torch.nn.parallel import DistributedDataParallel as DDP

from dcgan.model.losses import NonSaturating
from dcgan.model.networks.dcgan import Discriminator, Generator

ROOT = Path(__file__).resolve().parents[1]
STRATEGIES = {
    "one DDP per network (dcgan 'ddp')": "ddp",
    "whole module, find_unused_parameters=True": "ddp_find_unused_parameters_true",
}
def seconds_per_iteration(run_dir: Path, warmup: int) -> float:
    (events,) = (run_dir / "tensorboard").glob("events.out.tfevents.*")
    accumulator = EventAccumulator(str(events), size_guidance={"scalars": 0})
    accumulator.Reload()
    times = [event.wall_time for event in accumulator.Scalars("train/loss_d")][warmup:]
    return (times[-1] - times[0]) / (len(times) - 1)


def run(strategy: str, args: argparse.Namespace, out: Path) -> float:
    command = [
        sys.executable, str(ROOT / "train.py"), f"hydra.run.dir={out}", f"paths.data_dir={args.data_dir}",
        f"trainer.accelerator={args.accelerator}", "trainer.devices=2", f"trainer.strategy={strategy}",
        "trainer.max_epochs=1000", f"+trainer.max_steps={2 * args.iterations}", "trainer.log_every_n_steps=1",
        "callbacks.progress_bar.refresh_rate=0", "callbacks.image_grids.every_n_iterations=100000",
        "callbacks.checkpoints.every_n_epochs=0", *args.overrides,
    ]
    subprocess.run(command, check=True, capture_output=True, cwd=out.parent)
    return seconds_per_iteration(out, args.warmup)


def gan_step(g: nn.Module, d: nn.Module, plain_d: nn.Module, optimizers, before_backward) -> None:
    """The DCGAN step as gan.py runs it (D on real and detached fake, then G through plain D)."""
    opt_g, opt_d = optimizers
    fake = g(torch.randn(4, 100, 1, 1))
    loss_d = NonSaturating().discriminator(d(torch.randn(4, 3, 64, 64)), d(fake.detach()))
    before_backward(loss_d)
    loss_d.backward()
    opt_d.step()
    plain_d.requires_grad_(False)
    loss_g = NonSaturating().generator(plain_d(fake))
    before_backward(loss_g)
    loss_g.backward()
    opt_g.step()
    plain_d.requires_grad_(True)


class WholeModule(nn.Module):
    """Lightning's DDP: the whole step, both manual backwards, runs inside DDP's forward."""

    def __init__(self, g: nn.Module, d: nn.Module):
        super().__init__()
        self.g, self.d = g, d

    def forward(self, ddp: DDP, optimizers) -> None:
        gan_step(self.g, self.d, self.d, optimizers, lambda loss: prepare_for_backward(ddp, loss))
        ddp.require_backward_grad_sync = False  # what Lightning does after the inner forward


def traffic(separate: bool) -> int:
    """Bytes all-reduced in one iteration, the step run as the strategy runs it (after 2 others)."""
    g, d = Generator(100, 64, 3, 64), Discriminator(64, 3, 64)
    optimizers = torch.optim.Adam(g.parameters()), torch.optim.Adam(d.parameters())
    sent = [0]

    def counting_allreduce(state, bucket):
        sent[0] += bucket.buffer().numel() * bucket.buffer().element_size()
        future = dist.all_reduce(bucket.buffer().div_(2), async_op=True).get_future()
        return future.then(lambda f: f.value()[0])

    wrappers = [DDP(g), DDP(d)] if separate else [DDP(WholeModule(g, d), find_unused_parameters=True)]
    for wrapper in wrappers:
        wrapper.register_comm_hook(None, counting_allreduce)
    for _ in range(3):
        sent[0] = 0
        if separate:
            gan_step(wrappers[0], wrappers[1], d, optimizers, lambda loss: None)
        else:
            wrappers[0](wrappers[0], optimizers)
            wrappers[0].require_backward_grad_sync = True
    return sent[0]


def traffic_worker(rank: int, port: int, result) -> None:
    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port))
    dist.init_process_group("gloo", rank=rank, world_size=2)
    sent = {name: traffic(strategy == "ddp") for name, strategy in STRATEGIES.items()}
    if rank == 0:
        result.put(sent)
    dist.destroy_process_group()


def allreduced_megabytes(port: int = 29531) -> dict[str, float]:
    """Per strategy, the megabytes all-reduced per iteration by 2 CPU processes (gloo)."""
    result = mp.get_context("spawn").SimpleQueue()
    mp.spawn(traffic_worker, args=(port, result), nprocs=2)
    return {name: sent / 1e6 for name, sent in result.get().items()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--accelerator", default="cpu")
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--iterations", type=int, default=60)
    parser.add_argument("--warmup", type=int, default=10, help="first iterations left out of the timing")
    parser.add_argument("--data-dir", default=os.environ.get("DCGAN_DATA_DIR", str(ROOT / "data")),
                        help="paths.data_dir of the runs (default: as train.py's, from the checkout)")
    parser.add_argument("overrides", nargs="*", help="train.py overrides, e.g. model.ngf=64")
    args = parser.parse_args()
    if args.iterations < args.warmup + 2:
        parser.error(f"--iterations {args.iterations} leaves fewer than 2 timed iterations after --warmup {args.warmup}")

    times: dict[str, list[float]] = {name: [] for name in STRATEGIES}
    with tempfile.TemporaryDirectory() as tmp:
        for repeat in range(args.repeats):
            for name, strategy in STRATEGIES.items():  # alternating, so drift hits both alike
                times[name].append(run(strategy, args, Path(tmp) / f"{strategy}-{repeat}"))

    base = statistics.median(times["one DDP per network (dcgan 'ddp')"])
    print(f"2 processes on {args.accelerator}, digits preset with overrides: {' '.join(args.overrides) or 'none'}")
    print(f"{'strategy':<45} {'ms/iteration':>12} {'vs dcgan':>9}")
    for name, values in times.items():
        median = statistics.median(values)
        print(f"{name:<45} {1000 * median:>12.1f} {median / base:>8.2f}x")

    params = sum(p.numel() for net in (Generator(), Discriminator()) for p in net.parameters())
    print(f"\nall-reduced per iteration, seed's 64x64 model ({params:,} parameters, {4 * params / 1e6:.1f} MB fp32)")
    for name, megabytes in allreduced_megabytes().items():
        print(f"{name:<45} {megabytes:>9.1f} MB")


if __name__ == "__main__":
    main()
