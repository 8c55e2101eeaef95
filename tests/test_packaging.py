"""The installed distribution: one top-level import name, `runtap`, and the `runtap` command.

`pip install .` into a fresh virtual environment (without dependencies: only runtap's own files
matter here), then the installed distribution's RECORD is read. The install is made from a copy
of the source tree without build leftovers: setuptools packs whatever an earlier build left in
`build/`, which would hide a package missing from pyproject.toml.
"""

from __future__ import annotations

import csv
import glob
import os
import shutil
import subprocess
import sys
import tomllib

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


@pytest.fixture(scope="module")
def installed(tmp_path_factory):
    """(dist-info directory name, RECORD paths) of runtap installed with `pip install --no-deps .`."""
    tmp = tmp_path_factory.mktemp("install")
    source, venv = tmp / "source", tmp / "venv"
    leftovers = shutil.ignore_patterns(".git", ".venv*", "build", "dist", "*.egg-info", "__pycache__", "*.duckdb*")
    shutil.copytree(ROOT, source, ignore=leftovers)
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
    python = str(venv / "bin" / "python")
    subprocess.run(
        [python, "-m", "pip", "install", "--quiet", "--disable-pip-version-check", "--no-deps", str(source)],
        check=True,
        capture_output=True,
        timeout=300,
    )
    (site,) = glob.glob(str(venv / "lib" / "python*" / "site-packages"))
    (record,) = glob.glob(os.path.join(site, "runtap-*.dist-info", "RECORD"))
    with open(record, newline="") as fh:
        paths = [row[0] for row in csv.reader(fh)]
    return os.path.basename(os.path.dirname(record)), paths


@pytest.mark.timeout(600)
def test_one_top_level_import_name(installed):
    dist_info, paths = installed
    inside_site_packages = {path.split("/")[0] for path in paths if not path.startswith("..")}
    assert inside_site_packages == {"runtap", dist_info}


def test_only_the_package_is_installed(installed):
    _, paths = installed
    modules = {path for path in paths if path.endswith(".py")}
    assert "runtap/__init__.py" in modules and "runtap/cli.py" in modules and "runtap/addon/recorder.py" in modules
    for unwanted in ("tests/", "benchmarks/", "sample_captures/", "tools/", "docs/"):
        assert not any(path.startswith(f"runtap/{unwanted}") for path in paths), unwanted
    scripts = [path for path in paths if path.startswith("..") and path.endswith("/bin/runtap")]
    assert len(scripts) == 1  # the console script


def test_every_source_folder_is_a_listed_package():
    """A folder missing from pyproject's `packages` is left out of the wheel (a stale build/ can hide it)."""
    with open(os.path.join(ROOT, "pyproject.toml"), "rb") as fh:
        listed = set(tomllib.load(fh)["tool"]["setuptools"]["packages"])
    skipped = {"tests", "benchmarks", "sample_captures", "tools", "docs", "build", "dist"}
    for folder, dirs, files in os.walk(ROOT):
        dirs[:] = [d for d in dirs if d not in skipped and not d.startswith(".") and not d.endswith(".egg-info")]
        dirs[:] = [d for d in dirs if d != "__pycache__"]
        if any(name.endswith(".py") for name in files):
            relative = os.path.relpath(folder, ROOT)
            package = "runtap" if relative == "." else "runtap." + relative.replace(os.sep, ".")
            assert package in listed, package
