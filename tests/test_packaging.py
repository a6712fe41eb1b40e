"""The installed distribution's metadata: one version, license, classifiers that match requires-python."""

import importlib.metadata
import re

import cartesia
import cartesia.version


def test_one_version_everywhere():
    # pyproject reads cartesia/version.py, so the metadata cannot drift from the module.
    assert importlib.metadata.version("cartesia") == cartesia.version.__version__ == cartesia.__version__


def test_license_and_classifiers():
    meta = importlib.metadata.metadata("cartesia")
    assert meta["License-Expression"] == "MIT"
    assert "LICENSE" in (meta.get_all("License-File") or [])
    classifiers = meta.get_all("Classifier")
    assert "Typing :: Typed" in classifiers
    # PEP 639: a license expression and a "License ::" classifier must not both be there.
    assert not [c for c in classifiers if c.startswith("License ::")]
    oldest = re.fullmatch(r">=3\.(\d+)", meta["Requires-Python"])
    assert oldest, meta["Requires-Python"]
    version = re.compile(r"Programming Language :: Python :: 3\.(\d+)")
    minors = sorted(int(m.group(1)) for m in map(version.fullmatch, classifiers) if m)
    assert minors == list(range(int(oldest.group(1)), minors[-1] + 1)) and minors[-1] >= 14, minors

