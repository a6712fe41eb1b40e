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



def _project_urls():
    urls = {}
    for entry in importlib.metadata.metadata("cartesia").get_all("Project-URL") or []:
        label, _, url = entry.partition(",")
        assert label.strip() not in urls, f"duplicate Project-URL {label!r}"
        urls[label.strip()] = url.strip()
    return urls


def test_project_urls():
    urls = _project_urls()
    # Only links with a real target: the repository has no public home (Source, Issues) and
    # no changelog yet, and the package has no site of its own (Homepage).
    assert urls == {"Documentation": "https://docs.cartesia.ai"}, urls
    # The local server's error bodies link into the same documentation.
    from cartesia.server.v1.errors import DOC_URL

    assert DOC_URL.startswith(urls["Documentation"] + "/"), DOC_URL
