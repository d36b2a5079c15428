"""The ``bench`` command line (``idbench.bench.cli``) and the end-to-end benchmark."""
