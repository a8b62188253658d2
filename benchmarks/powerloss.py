"""Power-loss trials on LazyFS, for long runs (the short run is tests/powerloss in CI).

Each trial runs a sweep (scalar, image, run_process, resumed, streamed) in a child process on a
fresh LazyFS mount and loses power one of three ways (SIGKILL then ``lazyfs::clear-cache``, a
crash at a random fsync, a crash right after a rename onto the results file); then, in fresh
processes, checks that the file opens with plain xarray (or is absent), that a resumed sweep
gives every value exactly, and that no cell returned more than ``fsync_interval`` (plus one
cell) before the loss is computed again. See tests/powerloss/powerloss_harness.py.

Needs root, /dev/fuse and ../shared/tools/lazyfs beside the repository (built once into
``--cache``). Prints one line per trial and per-kind counts; exits 1 on any failed trial.

Run:  python benchmarks/powerloss.py [--trials 100] [--seed 1] [--only SCENARIO] [--loss KIND]
"""

from __future__ import annotations

import argparse
import os
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(os.path.dirname(HERE), "tests", "powerloss"))
import powerloss_harness as harness  # noqa: E402


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--trials", type=int, default=100)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--cache", default=None, help="where LazyFS is built (kept)")
    parser.add_argument("--only", choices=harness.SCENARIOS, help="one scenario")
    parser.add_argument("--loss", choices=harness.LOSSES, help="one kind of loss")
    args = parser.parse_args(argv)
    try:
        binary = harness.build(args.cache)
    except harness.Unavailable as exc:
        print(f"NOTICE: power-loss trials cannot run here: {exc}")
        return 0
    if args.only:
        harness.SCENARIOS = (args.only,)
    if args.loss:
        harness.LOSSES = (args.loss,)
    trials = harness.run_trials(
        args.trials, args.seed, binary, report=lambda s: print(s, flush=True)
    )
    print(harness.summary(trials))
    return 0 if all(t.outcome == "ok" for t in trials) else 1


if __name__ == "__main__":
    sys.exit(main())
