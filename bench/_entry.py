"""The console script's old path (``python -m idbench.bench._entry``): now :mod:`idbench.bench.cli.entry`."""

from idbench.bench.cli.entry import BENCH_MODULES, main, missing_extra_message  # noqa: F401

if __name__ == "__main__":
    main()
