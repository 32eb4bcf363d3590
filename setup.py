"""Build: Cython kernels (native/) and the Rust extension (rust/), one `pip install .`.

All extensions are optional unless FASTDICOM_REQUIRE_NATIVE=1: a machine
without a compiler still gets a working pure-Python package. The HTJ2K
binding (fastdicom._cy._openjph) links the system's OpenJPH (Debian:
libopenjph-dev) and is left out where its headers are missing.
"""

import os
import subprocess

from setuptools import Extension, setup

REQUIRE_NATIVE = os.environ.get("FASTDICOM_REQUIRE_NATIVE", "") not in ("", "0", "false", "no")


def openjph_include() -> str | None:
    """The folder holding OpenJPH's headers (pkg-config, then the usual places), or None."""
    dirs = []
    try:
        flags = subprocess.run(
            ["pkg-config", "--cflags-only-I", "openjph"], capture_output=True, text=True, check=True
        ).stdout.split()
        dirs += [f[2:] for f in flags if f.startswith("-I")]
    except (OSError, subprocess.CalledProcessError):
        pass
    dirs += ["/usr/include/openjph", "/usr/local/include/openjph"]
    return next((d for d in dirs if os.path.isfile(os.path.join(d, "ojph_codestream.h"))), None)


ext_modules = []
try:
    import numpy
    from Cython.Build import cythonize

    extensions = [
        Extension(
            "fastdicom._cy._kernels",
            ["native/_kernels.pyx"],
            include_dirs=[numpy.get_include()],
            extra_compile_args=["-O3", "-ffp-contract=off"],
            optional=not REQUIRE_NATIVE,
        )
    ]
    ojph = openjph_include()
    if ojph is not None or REQUIRE_NATIVE:  # required: let the compiler say what is missing
        extensions.append(
            Extension(
                "fastdicom._cy._openjph",
                ["native/_openjph.pyx"],
                language="c++",
                include_dirs=[numpy.get_include(), ojph or "/usr/include/openjph"],
                libraries=["openjph"],
                extra_compile_args=["-O3"],
                optional=not REQUIRE_NATIVE,
            )
        )
    ext_modules = cythonize(extensions, compiler_directives={"language_level": "3"})
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
