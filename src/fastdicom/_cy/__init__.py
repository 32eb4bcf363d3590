"""Private Cython kernels (built from ``native/``)."""
