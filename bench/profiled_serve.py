"""`liveclass serve`, unmodified, under cProfile switched on and off from outside (the bench's
profiling run): SIGUSR1 starts a profile, SIGUSR2 stops it and writes `<dir>/<n>.prof`.

    python -m bench.profiled_serve DIR serve --data-dir ... --port ...

cProfile profiles the thread that enables it: the signal handlers run in the main thread, which
is the server's event loop, where all forwarding happens.
"""

from __future__ import annotations

import cProfile
import signal
import time
import sys
from pathlib import Path

from liveclass.cli import main


def run() -> int:
    out = Path(sys.argv[1])
    # Thread CPU time, not wall time: on a busy machine a sendto that wakes the receiver can be
    # preempted, and wall time would charge the wait to it.
    profiler = cProfile.Profile(time.thread_time)
    written = 0

    def start(signum, frame) -> None:
        profiler.enable()

    def stop(signum, frame) -> None:
        nonlocal written
        profiler.disable()
        written += 1
        profiler.dump_stats(out / f"{written}.prof")
        profiler.clear()

    signal.signal(signal.SIGUSR1, start)
    signal.signal(signal.SIGUSR2, stop)
    return main(sys.argv[2:])


if __name__ == "__main__":
    sys.exit(run())
