"""``python -m idbench.bench.cli ...`` (torchrun's form of ``bench``)."""

from idbench.bench.cli.entry import main

main()
