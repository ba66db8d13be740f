"""The `harmonise` command line: click commands only, over the Python API (harmonise.api).

Commands live in one module per area so each has one owner: ``core`` (validate, build,
query, fixtures, sql). ``base`` holds the root group, error handling and output formatting.
"""

from __future__ import annotations

import os

# One BLAS thread for the whole command, set before numpy (or scipy, each with its own OpenBLAS) loads: the
# linear algebra here is on matrices of a few hundred cells, which a second thread slows down, and the idle
# pool threads of a multi-threaded call spin on a core the build's workers need (1.7 CPU-seconds of the
# 298-file build in `blas_thread_server`, beside the SVDs already limited by `one_blas_thread`). A user's own
# setting wins; workers and the validation server inherit the environment.
for _var in ("OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_var, "1")

from harmonise.cli import analysis, authoring, codebook, core  # noqa: F401  (importing a module registers its commands)
from harmonise.cli.base import main

__all__ = ["main"]

if __name__ == "__main__":  # pragma: no cover
    main()
