"""paycore: self-hosted, production-hardened payments and orders."""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("paycore")
except PackageNotFoundError:  # running from a source tree that was never installed
    __version__ = "0.0.0"
