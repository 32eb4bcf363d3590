from __future__ import annotations

import os

import pytest

from fastdicom import _backends

from . import corpus


def backends_to_test(capability: str = "parse") -> list[str]:
    """The implementations of a capability to run tests against (only 'python' under FASTDICOM_BACKEND=python)."""
    if _backends.forced() == "python":
        return ["python"]
    names = []
    for name, module, attr in _backends.REGISTRY[capability]:
        mod, _why = _backends._try(name, module, attr)
        if mod is not None or _backends.require_native():
            names.append(name)
    return names


def implementations(capability: str) -> list[tuple[str, object]]:
    """``(name, module)`` of each implementation of a capability that imports, as backends_to_test picks them."""
    out = []
    for name, module, attr in _backends.REGISTRY[capability]:
        if _backends.forced() == "python" and not _backends.is_python(name):
            continue
        mod, _why = _backends._try(name, module, attr)
        if mod is not None:
            out.append((name, mod))
    return out


@pytest.fixture(params=backends_to_test())
def backend(request) -> str:
    """Each parse backend in turn (only 'python' under FASTDICOM_BACKEND=python)."""
    return request.param


def pytest_report_header(config):
    return [
        f"fastdicom backends: {_backends.backend_info()}",
        f"FASTDICOM_BACKEND={os.environ.get('FASTDICOM_BACKEND', '')}",
        corpus.summary() + (" [FASTDICOM_REQUIRE_CORPUS=1]" if corpus.require_corpus() else ""),
    ]


def pytest_sessionstart(session):
    """Under FASTDICOM_REQUIRE_CORPUS=1 (CI) a missing corpus list ends the run as a failure."""
    if corpus.require_corpus() and not corpus.corpus_files():
        pytest.exit(
            f"FASTDICOM_REQUIRE_CORPUS=1 and the corpus list {corpus.TABLE} is missing or empty "
            "(regenerate it: python ci/gen_corpus_table.py)",
            returncode=pytest.ExitCode.USAGE_ERROR,
        )


@pytest.hookimpl(tryfirst=True)
def pytest_runtest_setup(item):
    """A test parametrized by a corpus file that is not here skips, saying why; under FASTDICOM_REQUIRE_CORPUS=1 it fails."""
    for cf in corpus.corpus_params(item):
        why = cf.missing()
        if why is None:
            continue
        if corpus.require_corpus():
            pytest.fail(f"FASTDICOM_REQUIRE_CORPUS=1: {why}", pytrace=False)
        pytest.skip(why)
