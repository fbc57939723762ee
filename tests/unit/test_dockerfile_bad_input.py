"""Every Dockerfile, however broken, either parses or fails with a BuildError naming its line:
hand-picked cases and a seeded generator of random ones. And `labkit build` shows that error,
never a traceback."""

from __future__ import annotations

import os
import random
import subprocess
import sys
from pathlib import Path

import pytest

from labkit.errors import BuildError
from labkit.images.dockerfile import parse

ROOT = Path(__file__).resolve().parents[2]
ATOMS = [
    "FROM", "RUN", "COPY", "ADD", "ENV", "ARG", "WORKDIR", "CMD", "ENTRYPOINT", "LABEL", "EXPOSE",
    "USER", "VOLUME", "HEALTHCHECK", "SHELL", "ONBUILD", "STOPSIGNAL", "busybox", "AS", "x", "$X",
    "${X:-y}", "${", "}", "[", "]", '"', "'", "\\", "`", "<<EOF", "EOF", "--from=0", "--chown=",
    "--mount=type=cache", "=", "a=b", "#", "# escape=`", "# syntax=x", "\t", " ", "\n", "\n", "--",
    "${X:?err}", "$$", "é", "\r", "\ufeff",
]  # fmt: skip


@pytest.mark.parametrize(
    ("text", "line", "words"),
    [
        ("\\\n\\\n\\\n", 1, "no instruction follows"),
        ("FROM busybox\nRUN echo a\n\\\n", 3, "no instruction follows"),
        ("# escape=`\n`\n`\n", 2, "no instruction follows"),
        ("ARG VERSION=1\n", 1, "no FROM"),
        ("ARG A\nARG B\n", 2, "no FROM"),
        ("", 1, "empty"),
        ("RUN echo hi\n", 1, "before the first FROM"),
    ],
    ids=[
        "only-continuations",
        "trailing-continuation",
        "backtick-continuations",
        "only-arg",
        "two-args",
        "empty",
        "run-first",
    ],
)
def test_broken_dockerfiles_name_their_line(text: str, line: int, words: str) -> None:
    with pytest.raises(BuildError) as caught:
        parse(text)
    assert caught.value.line == line
    assert f"line {line}" in str(caught.value) and words in str(caught.value)


def _generated(count: int, seed: int = 11) -> list[str]:
    rng = random.Random(seed)
    return [
        "".join(rng.choice(ATOMS) + rng.choice([" ", "", "\n"]) for _ in range(rng.randint(1, 12)))
        for _ in range(count)
    ]


def test_generated_dockerfiles_parse_or_fail_with_a_line() -> None:
    refused = 0
    for text in _generated(5000):
        try:
            parse(text)
        except BuildError as e:
            refused += 1
            assert isinstance(e.line, int) and e.line >= 1, (text, str(e))
            assert f"line {e.line}" in str(e), (text, str(e))
    assert refused > 1000  # the generator does produce broken files


def test_labkit_build_of_only_continuation_lines_is_a_clear_error(tmp_path: Path) -> None:
    (tmp_path / "Dockerfile").write_text("\\\n\\\n")
    env = {**os.environ, "LABKIT_HOME": str(tmp_path / "home"), "PYTHONPATH": str(ROOT)}
    result = subprocess.run(
        [sys.executable, "-m", "labkit", "build", "-t", "x:1", str(tmp_path)],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode != 0
    assert "Traceback" not in result.stderr, result.stderr
    assert "line 1" in result.stderr and "no instruction follows" in result.stderr, result.stderr
