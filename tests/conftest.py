import os

# Tests must never depend on a machine's BLAS thread settings or an accelerator.
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
