"""Where generated source is written: a private per-user folder, kept small."""

import os
import sys

import numpy as np
import pytest

import pullback
from pullback.compiler import emit

posix_only = pytest.mark.skipif(sys.platform == "win32", reason="POSIX permissions")


@pytest.fixture
def temporary_root(tmp_path, monkeypatch):
    """Point the cache folder at a fresh temporary root for one test."""
    monkeypatch.setattr(emit.tempfile, "gettempdir", lambda: str(tmp_path))
    emit._cache_folder.cache_clear()
    yield tmp_path
    # Later compiles check the real folder again.
    emit._cache_folder.cache_clear()


def folder_name() -> str:
    return f"pullback-generated-{os.getuid()}"


def doubled(x):
    return np.sum(2.0 * x)


@posix_only
def test_folder_is_private(temporary_root):
    path = emit._filename("x = 1\n", "probe")
    folder = temporary_root / folder_name()
    assert path == str(folder / os.path.basename(path))
    assert (folder.stat().st_mode & 0o777) == 0o700
    with open(path, encoding="utf-8") as handle:
        assert handle.read() == "x = 1\n"


@posix_only
def test_symbolic_link_folder_not_used(temporary_root):
    target = temporary_root / "elsewhere"
    target.mkdir()
    os.symlink(target, temporary_root / folder_name())
    path = emit._filename("x = 1\n", "probe")
    assert path.startswith("<pullback probe ")
    assert list(target.iterdir()) == []


@posix_only
def test_shared_folder_not_used(temporary_root):
    folder = temporary_root / folder_name()
    folder.mkdir(mode=0o777)
    os.chmod(folder, 0o777)
    path = emit._filename("x = 1\n", "probe")
    assert path.startswith("<pullback probe ")
    assert list(folder.iterdir()) == []


@posix_only
def test_gradient_without_folder_shows_source(temporary_root):
    os.symlink(temporary_root, temporary_root / folder_name())
    # The generated lines are still registered in linecache.
    assert pullback.gradient(doubled)(np.ones(2)).tolist() == [2.0, 2.0]


@posix_only
def test_old_files_pruned(temporary_root, monkeypatch):
    monkeypatch.setattr(emit, "_MAX_CACHED_FILES", 10)
    folder = temporary_root / folder_name()
    folder.mkdir(mode=0o700)
    for index in range(12):
        path = folder / f"old_{index}.py"
        path.write_text("x = 1\n")
        os.utime(path, (1000.0 + index, 1000.0 + index))
    emit._filename("y = 2\n", "probe")
    remaining = {p.name for p in folder.iterdir() if p.name.startswith("old_")}
    # The newest half of the limit stays, plus the file just written.
    assert remaining == {f"old_{index}.py" for index in range(7, 12)}
    assert len(list(folder.iterdir())) == 6
