"""``python -m ariasim``: the same command line as the ``ariasim`` script."""

from ariasim.cli import main

if __name__ == "__main__":  # pragma: no cover
    main()
