"""Ask a saved ariasim controller which events to simulate further (no ariasim run needed).

This is how another production framework (IceProd, Gaudi, a shell script) uses a
controller trained by ``ariasim active run``: it imports only the standalone loader
(json, numpy, lightgbm), reads a CSV file of events (one column per feature, header line
first; ``-`` or nothing: standard input) and prints, per event, whether to go on and the
weight the event then carries::

    python examples/active_decide.py RUN/controllers/round-003/photons events.csv

Output: ``row,accept,weight`` lines. Pass ``--seed N`` for reproducible decisions.
"""

from __future__ import annotations

import sys

import numpy as np

from ariasim.active.loader import load_controller
from ariasim.errors import InputError


def main(argv: list[str]) -> int:
    args = list(argv)
    seed = None
    if "--seed" in args:
        i = args.index("--seed")
        seed = int(args[i + 1])
        del args[i : i + 2]
    if not args:
        print(__doc__, file=sys.stderr)
        return 2
    source = args[1] if len(args) > 1 and args[1] != "-" else sys.stdin
    try:
        controller = load_controller(args[0])
        table = np.genfromtxt(source, delimiter=",", names=True, dtype=float, ndmin=1)
        columns = {name: table[name] for name in table.dtype.names or ()}
        accept, weight = controller.decide(columns, rng=seed)
    except (InputError, OSError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    print("row,accept,weight")
    for row, (acc, w) in enumerate(zip(accept, weight, strict=True)):
        print(f"{row},{int(acc)},{float(w)!r}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
