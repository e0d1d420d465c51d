"""paycore: self-hosted, production-hardened payments and orders."""

from __future__ import annotations


def __getattr__(name: str) -> str:
    # Looked up on first use: importlib.metadata costs a tenth of a second, and `paycore --help`
    # must not pay it.
    if name == "__version__":
        from importlib.metadata import PackageNotFoundError, version

        try:
            return version("paycore")
        except PackageNotFoundError:  # running from a source tree that was never installed
            return "0.0.0"
    raise AttributeError(name)
