"""Following a file: every complete line once, in order, as the file grows (a half-written line waits for its
newline), is truncated in place, and is rotated by renaming (the old file's last lines, then the new file's)."""

import os

from aigc.monitoring.follow import Follower


def write(path, text, mode="a"):
    with open(path, mode, encoding="utf-8") as f:
        f.write(text)


def test_lines_come_once_as_the_file_grows(tmp_path):
    path = tmp_path / "stream.txt"
    follower = Follower(path)
    assert follower.poll() == []  # no file yet
    write(path, "one\ntwo\nthr")
    assert follower.poll() == ["one", "two"]
    assert follower.poll() == []
    write(path, "ee\n\nfour\r\nfive")
    assert follower.poll() == ["three", "four"]
    assert follower.rest() == ["five"] and follower.poll() == []


def test_from_the_end_only_new_lines_come(tmp_path):
    path = tmp_path / "stream.txt"
    write(path, "old\n")
    follower = Follower(path, from_end=True)
    assert follower.poll() == []
    write(path, "new\n")
    assert follower.poll() == ["new"]


def test_a_truncated_file_is_read_again_from_its_start(tmp_path):
    path = tmp_path / "stream.txt"
    write(path, "one\ntwo\n")
    follower = Follower(path)
    assert follower.poll() == ["one", "two"]
    write(path, "x\n", mode="w")
    assert follower.poll() == ["x"]


def test_a_rotated_file_is_read_to_its_end_then_the_new_one(tmp_path):
    path = tmp_path / "stream.txt"
    write(path, "one\n")
    follower = Follower(path)
    assert follower.poll() == ["one"]
    write(path, "two\nlast without a newline")
    os.rename(path, tmp_path / "stream.txt.1")
    assert follower.poll() == ["two", "last without a newline"]  # the new file does not exist yet
    write(path, "three\n")
    assert follower.poll() == ["three"]
    write(path, "four\n")
    os.rename(path, tmp_path / "stream.txt.2")
    write(path, "five\n")
    assert follower.poll() == ["four", "five"]
