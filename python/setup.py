"""Builds the Swift library (release) and ships it inside the package.

``pip install ./python`` runs ``swift build -c release --product datadist_c`` in the repository root (the folder
above this one, or ``DATADIST_SOURCE_ROOT``) and copies ``libdatadist_c.so`` and ``datadist.h`` into
``llm_datadist/_lib``. ``DATADIST_SWIFT`` names the swift binary (default: ``swift`` on PATH).
"""

import os
import shutil
import subprocess

from setuptools import setup
from setuptools.command.build_py import build_py
from setuptools.dist import Distribution

HERE = os.path.dirname(os.path.abspath(__file__))


def source_root() -> str:
    root = os.environ.get("DATADIST_SOURCE_ROOT") or os.path.dirname(HERE)
    if not os.path.exists(os.path.join(root, "Package.swift")):
        raise RuntimeError(f"llm_datadist: no Package.swift in {root}; set DATADIST_SOURCE_ROOT to the DataDist checkout")
    return root


def build_library(destination: str) -> None:
    root = source_root()
    swift = os.environ.get("DATADIST_SWIFT", "swift")
    subprocess.check_call([swift, "build", "-c", "release", "--product", "datadist_c"], cwd=root)
    binary = subprocess.check_output([swift, "build", "-c", "release", "--show-bin-path"], cwd=root, text=True).strip()
    os.makedirs(os.path.join(destination, "include", "datadist"), exist_ok=True)
    shutil.copy2(os.path.join(binary, "libdatadist_c.so"), os.path.join(destination, "libdatadist_c.so"))
    shutil.copy2(
        os.path.join(root, "Sources", "CDataDist", "include", "datadist", "datadist.h"),
        os.path.join(destination, "include", "datadist", "datadist.h"),
    )


class BuildWithSwift(build_py):
    def run(self) -> None:
        build_library(os.path.join(HERE, "llm_datadist", "_lib"))
        super().run()


class BinaryDistribution(Distribution):
    """The wheel carries a native library, so it is platform-specific."""

    def has_ext_modules(self) -> bool:
        return True


if __name__ == "__main__":
    setup(cmdclass={"build_py": BuildWithSwift}, distclass=BinaryDistribution)
