"""Build: Cython kernels (native/) and the Rust extension (rust/), one `pip install .`.

Both extensions are optional unless FASTDICOM_REQUIRE_NATIVE=1: a machine
without a compiler still gets a working pure-Python package.
"""

import os

from setuptools import Extension, setup

REQUIRE_NATIVE = os.environ.get("FASTDICOM_REQUIRE_NATIVE", "") not in ("", "0", "false", "no")

ext_modules = []
try:
    import numpy
    from Cython.Build import cythonize

    ext_modules = cythonize(
        [
            Extension(
                "fastdicom._cy._kernels",
                ["native/_kernels.pyx"],
                include_dirs=[numpy.get_include()],
                extra_compile_args=["-O3", "-ffp-contract=off"],
                optional=not REQUIRE_NATIVE,
            )
        ],
        compiler_directives={"language_level": "3"},
    )
    for ext in ext_modules:  # cythonize does not carry `optional` over
        ext.optional = not REQUIRE_NATIVE
except ImportError:
    if REQUIRE_NATIVE:
        raise

rust_extensions = []
try:
    from setuptools_rust import Binding, RustExtension

    rust_extensions = [
        RustExtension(
            "fastdicom._rust",
            path="rust/crates/fastdicom-py/Cargo.toml",
            binding=Binding.PyO3,
            optional=not REQUIRE_NATIVE,
            debug=False,
        )
    ]
except ImportError:
    if REQUIRE_NATIVE:
        raise

setup(ext_modules=ext_modules, rust_extensions=rust_extensions, zip_safe=False)
