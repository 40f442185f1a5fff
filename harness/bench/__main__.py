"""``python -m harness.bench``: see :mod:`harness.bench`."""

from harness.bench.cli import main

if __name__ == "__main__":
    main()
