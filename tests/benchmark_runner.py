"""Runs benchmarks as `python benchmarks/<script> ARGS` would, each in a child forked from this
process after its imports: each then pays for its own work, not for importing torch and Lightning
again (seconds each on two cores). A fresh child per benchmark keeps their global state apart.

    python tests/benchmark_runner.py OUT '{"script.py": ["--option", "value"], ...}'

writes OUT/<script>.out, OUT/<script>.err, OUT/<script>.rc (its exit status) and OUT/<script>.s
(the seconds it took: what to shrink first when the slow tests take too long).
"""

import json
import os
import runpy
import sys
import time
import traceback
from pathlib import Path

import pytorch_lightning  # noqa: F401  the imports every benchmark shares, done once here
import torchvision  # noqa: F401
from tensorboard.backend.event_processing import event_accumulator  # noqa: F401

BENCHMARKS = Path(__file__).resolve().parents[1] / "benchmarks"
sys.path[:0] = [str(BENCHMARKS.parent), str(BENCHMARKS)]  # as running the script there puts them first

import train  # noqa: F401


def run_in_child(script: str, args: list[str], out: Path) -> int:
    """The script's exit status, run by runpy in a forked child writing out/<script>.out|err."""
    workdir = out / script.removesuffix(".py")
    workdir.mkdir()
    pid = os.fork()
    if pid:
        return os.waitstatus_to_exitcode(os.waitpid(pid, 0)[1])
    status = 1
    try:
        os.chdir(workdir)
        for stream, suffix in ((1, "out"), (2, "err")):
            sys.stdout.flush(), sys.stderr.flush()
            os.dup2(os.open(out / f"{script}.{suffix}", os.O_WRONLY | os.O_CREAT | os.O_TRUNC), stream)
        sys.argv = [str(BENCHMARKS / script), *args]
        runpy.run_path(sys.argv[0], run_name="__main__")
        status = 0
    except SystemExit as done:  # sys.exit(status), or SystemExit(message) as Python itself prints it
        if done.code is None or isinstance(done.code, int):
            status = done.code or 0
        else:
            print(done.code, file=sys.stderr)
    except BaseException:
        traceback.print_exc()
    finally:
        sys.stdout.flush(), sys.stderr.flush()
        os._exit(status)


def main() -> None:
    out, scripts = Path(sys.argv[1]), json.loads(sys.argv[2])
    for script, args in scripts.items():
        started = time.perf_counter()
        (out / f"{script}.rc").write_text(str(run_in_child(script, args, out)))
        (out / f"{script}.s").write_text(f"{time.perf_counter() - started:.1f}")


if __name__ == "__main__":
    main()
