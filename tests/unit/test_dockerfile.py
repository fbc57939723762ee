"""The Dockerfile parser and its variable substitution, as Docker reads Dockerfiles."""

from __future__ import annotations

import pytest

from labkit.errors import BuildError
from labkit.images.dockerfile import SubstitutionError, expand, parse, words


def only_stage(text: str) -> list[tuple[str, str]]:
    (stage,) = parse(text).stages
    return [(i.keyword, i.value) for i in stage.instructions]


def test_continuations_join_lines_and_drop_comments_inside_them() -> None:
    text = "FROM busybox\nRUN echo a \\\n# a comment inside\n    && echo b\\\n\n  c\nCMD sh\n"
    parsed = parse(text)
    run, cmd = parsed.stages[0].instructions
    assert run.value == "echo a     && echo b  c"  # leading white space of continued lines is kept
    assert run.line == 2 and cmd.line == 7
    assert any("empty continuation line" in w for w in parsed.warnings)


def test_escape_directive_changes_the_continuation_character() -> None:
    text = "# escape=`\nFROM busybox\nRUN dir c:\\ `\n  && echo done\n"
    parsed = parse(text)
    assert parsed.escape == "`" and parsed.directives == {"escape": "`"}
    assert parsed.stages[0].instructions[0].value == "dir c:\\   && echo done"


def test_directives_only_count_at_the_top() -> None:
    parsed = parse("# syntax=docker/dockerfile:1.7\n# escape=\\\nFROM busybox\n# escape=`\nRUN a \\\n b\n")
    assert parsed.directives == {"syntax": "docker/dockerfile:1.7", "escape": "\\"}
    assert parsed.stages[0].instructions[0].value == "a  b"
    assert parse("# a comment\n# escape=`\nFROM busybox\n").escape == "\\"


def test_keywords_are_case_insensitive_and_json_form_is_recognised() -> None:
    (stage,) = parse('from busybox\ncmd ["sh", "-c", "echo hi"]\nentrypoint echo hi\nCMD [oops\n').stages
    cmd, entrypoint, broken = stage.instructions
    assert cmd.keyword == "CMD" and cmd.json == ("sh", "-c", "echo hi")
    assert entrypoint.json is None and entrypoint.value == "echo hi"
    assert broken.json is None and broken.value == "[oops"  # not JSON: the shell form, as Docker


def test_stages_args_before_from_and_flags() -> None:
    text = (
        "ARG VERSION=3.12\nFROM python:${VERSION}-slim AS Build\nRUN make\n"
        "FROM --platform=linux/amd64 busybox\nCOPY --from=build --chmod=755 --link /out /app/\n"
    )
    parsed = parse(text)
    assert [a.value for a in parsed.global_args] == ["VERSION=3.12"]
    build, final = parsed.stages
    assert (build.name, build.base, build.label) == ("build", "python:${VERSION}-slim", "build")
    assert (final.name, final.label, final.from_.flag("platform")) == ("", "1", "linux/amd64")
    copy = final.instructions[0]
    assert copy.flag("from") == "build" and copy.flag("chmod") == "755" and copy.flag("link") == ""
    assert copy.flag("chown") is None and copy.value == "/out /app/"
    assert parsed.stage("BUILD") is build and parsed.stage("1") is final and parsed.stage("nope") is None


def test_heredocs_keep_their_bodies_and_quoting() -> None:
    text = (
        "FROM busybox\nRUN <<EOF\necho $HOME\nEOF\n"
        "RUN python3 <<-'PY'\n\tprint('x')\n\tPY\n"
        "COPY <<A <<B /etc/\none\nA\ntwo\nB\nCMD sh\n"
    )
    run, py, copy, cmd = parse(text).stages[0].instructions
    assert run.heredocs[0].body == "echo $HOME\n" and run.heredocs[0].expand
    assert py.heredocs[0].body == "print('x')\n" and not py.heredocs[0].expand
    assert [(h.name, h.body) for h in copy.heredocs] == [("A", "one\n"), ("B", "two\n")]
    assert cmd.line == 13


@pytest.mark.parametrize(
    ("text", "line", "message"),
    [
        ("FROM busybox\nRUNN echo hi\n", 2, "unknown instruction RUNN"),
        ("FROM busybox\n\nCOPPY a b\n", 3, "unknown instruction COPPY"),
        ("FROM\n", 1, "FROM needs arguments"),
        ("# hello\nRUN echo hi\nFROM busybox\n", 2, "RUN comes before the first FROM"),
        ("", 1, "the Dockerfile is empty"),
        ("# only a comment\n\n", 1, "the Dockerfile is empty"),
        ("FROM busybox\nRUN <<EOF\necho hi\n", 2, "has no closing EOF line"),
        ("# escape=x\nFROM busybox\n", 1, "invalid escape character"),
        ("FROM busybox AS a\nFROM busybox AS a\n", 2, "already exists"),
        ("FROM busybox AS\n", 1, "FROM takes an image"),
        ("FROM busybox\nSHELL /bin/bash -c\n", 2, "SHELL needs the JSON form"),
        ('FROM busybox\nCOPY ["a", b]\n', 2, "invalid JSON array"),
    ],
)
def test_syntax_errors_name_the_line(text: str, line: int, message: str) -> None:
    with pytest.raises(BuildError) as caught:
        parse(text)
    assert caught.value.line == line
    assert f"line {line}" in caught.value.message and message in caught.value.message
    assert caught.value.hint


def test_an_unknown_instruction_suggests_the_nearest() -> None:
    with pytest.raises(BuildError) as caught:
        parse("FROM busybox\nWORKDI /app\n")
    assert "did you mean WORKDIR?" in caught.value.hint


ENV = {"NAME": "posts", "EMPTY": "", "FILE": "archive.tar.gz"}


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("$NAME", "posts"),
        ("${NAME}-svc", "posts-svc"),
        ("${MISSING:-fallback}", "fallback"),
        ("${EMPTY:-fallback}", "fallback"),
        ("${EMPTY-fallback}", ""),
        ("${MISSING-fallback}", "fallback"),
        ("${NAME:+set}", "set"),
        ("${EMPTY:+set}", ""),
        ("${EMPTY+set}", "set"),
        ("${MISSING:+set}", ""),
        ("${MISSING:-${NAME}}", "posts"),
        ("${FILE%.*}", "archive.tar"),
        ("${FILE%%.*}", "archive"),
        ("${FILE#*.}", "tar.gz"),
        ("${FILE##*.}", "gz"),
        ("'$NAME'", "$NAME"),
        ('"$NAME and ${NAME}"', "posts and posts"),
        ("\\$NAME", "$NAME"),
        ("cost: $5", "cost: "),  # $5 is an (unset) variable, as in a shell
        ("$MISSING", ""),
    ],
)
def test_substitution_follows_dockers_rules(text: str, expected: str) -> None:
    assert expand(text, ENV) == expected


def test_words_split_on_unquoted_white_space() -> None:
    assert words('A="hello world" B=$NAME C=a\\ b', ENV) == ["A=hello world", "B=posts", "C=a b"]
    assert words("a` b c", ENV, escape="`") == ["a b", "c"]
    assert words("$NAME x", None) == ["$NAME", "x"]  # no environment: no substitution


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("${MISSING:?set MISSING first}", "MISSING: set MISSING first"),
        ("${NAME", "missing '}'"),
        ('"open', "unmatched"),
    ],
)
def test_bad_substitutions_are_errors(text: str, message: str) -> None:
    with pytest.raises(SubstitutionError, match=message):
        expand(text, ENV)
