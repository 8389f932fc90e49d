"""`read_file` and `list_dir` against a path swapped while they walk it, and against a
hard link to an outside file: 0 escapes, counted over a fixed number of attempts."""

from __future__ import annotations

import os
import threading

import pytest

from tools.builtin.files import DIR_FD, make_list_dir, make_read_file
from tools.calls import ToolCall

pytestmark = pytest.mark.skipif(not DIR_FD, reason="no dir_fd on this platform")

ATTEMPTS = 2_000


def call(t, **arguments):
    from tools import ToolRegistry

    return ToolRegistry([t]).execute_sync(ToolCall("1", t.name, arguments))


@pytest.fixture
def racing_root(tmp_path):
    """`root/sub` is, by turns, a real directory and a symlink to an outside one."""
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "f.txt").write_text("top secret")
    (outside / "outside-only.txt").write_text("x")
    root = tmp_path / "root"
    (root / "real").mkdir(parents=True)
    (root / "real" / "f.txt").write_text("inside")
    (root / "link").symlink_to(outside)
    return root


def _swapper(root, stop: threading.Event, swaps: list[int]) -> None:
    while not stop.is_set():
        for name in ("real", "link"):
            os.rename(root / name, root / "sub")
            os.rename(root / "sub", root / name)
        swaps[0] += 1


def test_a_swapped_directory_never_lets_a_read_or_listing_escape(racing_root):
    read_file, list_dir = make_read_file(racing_root), make_list_dir(racing_root)
    stop, swaps = threading.Event(), [0]
    swapper = threading.Thread(target=_swapper, args=(racing_root, stop, swaps), daemon=True)
    swapper.start()
    escapes = 0
    try:
        for _ in range(ATTEMPTS):
            text = call(read_file, path="sub/f.txt").content
            listing = call(list_dir, path="sub").content
            escapes += ("top secret" in text) + ("outside-only.txt" in listing)
    finally:
        stop.set()
        swapper.join()
    assert escapes == 0
    assert swaps[0] > 0  # the race did run


def test_a_hard_link_to_an_outside_file_is_refused(tmp_path):
    outside = tmp_path / "secret.txt"
    outside.write_text("top secret")
    root = tmp_path / "root"
    root.mkdir()
    os.link(outside, root / "linked.txt")
    result = call(make_read_file(root), path="linked.txt")
    assert result.error == (
        "refused: 'linked.txt' has 2 hard links (one may be outside the tool's root)"
    )


@pytest.mark.parametrize(
    ("target", "ok"),
    [("docs/a.md", True), ("./docs/../docs/a.md", True), ("../secret.txt", False),
     ("docs/../../secret.txt", False)],
)  # fmt: skip
def test_relative_symlinks_are_followed_only_inside_the_root(tmp_path, target, ok):
    (tmp_path / "secret.txt").write_text("top secret")
    root = tmp_path / "root"
    (root / "docs").mkdir(parents=True)
    (root / "docs" / "a.md").write_text("hello")
    (root / "l").symlink_to(target)
    result = call(make_read_file(root), path="l")
    assert (result.content == "hello") is ok
    assert "top secret" not in result.content
