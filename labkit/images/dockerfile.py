"""A Dockerfile parser with the Docker Engine's rules.

It handles parser directives (``# syntax=``, ``# escape=``, ``# check=``), line continuations
with comments inside them, shell and JSON (exec) forms, flags such as ``COPY --from=build``,
heredocs (``RUN <<EOF`` ... ``EOF``, ``<<-`` and quoted terminators), ARG before FROM and
multi-stage builds. :func:`parse` gives a :class:`Dockerfile`; every error is a
:class:`~labkit.errors.BuildError` that names the line. Both builders read Dockerfiles only
through it: the embedded builder runs its stages, the Docker Engine builder maps the engine's
step numbers to its instructions. :func:`expand` and :func:`words` (variable substitution as
Docker's shell lexer does it) live in :mod:`~labkit.images.substitution` and are re-exported
here.
"""

from __future__ import annotations

import difflib
import json
import re
from dataclasses import dataclass, field

from labkit.errors import BuildError
from labkit.images.substitution import SubstitutionError, expand, words

__all__ = [
    "Dockerfile",
    "EmptyDockerfileError",
    "Heredoc",
    "Instruction",
    "Stage",
    "SubstitutionError",
    "expand",
    "parse",
    "words",
]

INSTRUCTIONS = (
    "ADD", "ARG", "CMD", "COPY", "ENTRYPOINT", "ENV", "EXPOSE", "FROM", "HEALTHCHECK", "LABEL",
    "MAINTAINER", "ONBUILD", "RUN", "SHELL", "STOPSIGNAL", "USER", "VOLUME", "WORKDIR",
)  # fmt: skip
JSON_FORMS = {"RUN", "CMD", "ENTRYPOINT", "SHELL", "COPY", "ADD", "VOLUME", "HEALTHCHECK"}
FLAGGED = {"FROM", "COPY", "ADD", "RUN", "HEALTHCHECK"}
HEREDOC_FORMS = {"RUN", "COPY", "ADD"}
NEEDS_ARGS = set(INSTRUCTIONS) - {"HEALTHCHECK"}
DIRECTIVE = re.compile(r"^#\s*([a-zA-Z][a-zA-Z0-9_-]*)\s*=\s*(.*?)\s*$")
KNOWN_DIRECTIVES = {"syntax", "escape", "check"}
HEREDOC = re.compile(r"<<(-?)\s*(['\"]?)([A-Za-z_][A-Za-z0-9_]*)\2")
SYNTAX_HINT = "see https://docs.docker.com/reference/dockerfile/"


@dataclass(frozen=True)
class Heredoc:
    """The body of one ``<<NAME`` of an instruction."""

    name: str
    body: str  # ends with a newline, as the shell gives it
    expand: bool  # the terminator was not quoted: variables in the body are substituted


@dataclass(frozen=True)
class Instruction:
    """One instruction, with its continuation lines joined."""

    keyword: str  # upper case: "RUN"
    value: str  # the arguments after the flags (for heredocs: the first line only)
    line: int  # the line it starts on (1-based)
    original: str  # as written, on one line: "RUN pip install -r requirements.txt"
    flags: tuple[tuple[str, str], ...] = ()  # ("from", "build"), ("link", "")
    json: tuple[str, ...] | None = None  # the JSON (exec) form's array
    heredocs: tuple[Heredoc, ...] = ()

    def flag(self, name: str) -> str | None:
        """The value of ``--name`` (``""`` for a bare flag), or None when absent."""
        for key, value in self.flags:
            if key == name:
                return value
        return None


@dataclass(frozen=True)
class Stage:
    """One ``FROM`` and the instructions up to the next."""

    index: int
    name: str  # the ``AS`` name in lower case, or ""
    from_: Instruction
    instructions: tuple[Instruction, ...]

    @property
    def base(self) -> str:
        """The image it starts from, as written (``python:${VERSION}-slim``)."""
        return self.from_.value.split()[0]

    @property
    def label(self) -> str:
        """The name, or the index when it has none."""
        return self.name or str(self.index)

    @property
    def steps(self) -> tuple[Instruction, ...]:
        """The FROM and the instructions after it: one build step each, in order."""
        return (self.from_, *self.instructions)


@dataclass(frozen=True)
class Dockerfile:
    """A parsed Dockerfile."""

    stages: tuple[Stage, ...]
    global_args: tuple[Instruction, ...] = ()  # ARGs before the first FROM
    directives: dict[str, str] = field(default_factory=dict)
    escape: str = "\\"
    warnings: tuple[str, ...] = ()

    def stage(self, ref: str) -> Stage | None:
        """The stage named ``ref`` (case-insensitive) or with that index."""
        for stage in self.stages:
            if stage.name and stage.name == ref.lower():
                return stage
        if ref.isdigit() and int(ref) < len(self.stages):
            return self.stages[int(ref)]
        return None


class EmptyDockerfileError(BuildError):
    """The Dockerfile has no instruction at all (blank, or only comments and directives)."""


def parse(text: str) -> Dockerfile:
    """Parse a Dockerfile's text; raises :class:`BuildError` naming the line."""
    lines = text.lstrip("\ufeff").splitlines()
    directives, start, warnings = _directives(lines)
    escape = directives.get("escape", "\\")
    instructions: list[Instruction] = []
    i = start
    while i < len(lines):
        stripped = lines[i].strip()
        if not stripped or stripped.startswith("#"):
            i += 1
            continue
        instruction, i, notes = _instruction(lines, i, escape)
        instructions.append(instruction)
        warnings.extend(notes)
    return _stages(instructions, directives, escape, warnings)


def _directives(lines: list[str]) -> tuple[dict[str, str], int, list[str]]:
    found: dict[str, str] = {}
    warnings: list[str] = []
    for number, line in enumerate(lines):
        match = DIRECTIVE.match(line.strip())
        if not match or match.group(1).lower() not in KNOWN_DIRECTIVES:
            return found, number, warnings
        name, value = match.group(1).lower(), match.group(2)
        if name in found:
            raise BuildError(
                f"Dockerfile line {number + 1}: the {name} directive is given twice",
                "keep one of them",
                line=number + 1,
            )
        if name == "escape" and value not in ("\\", "`"):
            raise BuildError(
                f"Dockerfile line {number + 1}: invalid escape character {value!r}",
                "use # escape=\\ (the default) or # escape=`",
                line=number + 1,
            )
        if name == "syntax" and not value.split(":")[0].endswith("docker/dockerfile"):
            warnings.append(
                f"line {number + 1}: the syntax directive names {value}; labkit's builder reads "
                "standard Dockerfile syntax and ignores other frontends"
            )
        found[name] = value
    return found, len(lines), warnings


def _continued(line: str, escape: str) -> str | None:
    """The line without its trailing escape character, or None when it does not continue."""
    body = line.rstrip(" \t")
    return body[:-1] if body.endswith(escape) else None


def _instruction(lines: list[str], i: int, escape: str) -> tuple[Instruction, int, list[str]]:
    """The instruction starting at ``lines[i]``; the index after it; warnings."""
    first = i + 1
    parts: list[str] = []
    notes: list[str] = []
    line = lines[i].lstrip()
    while True:
        body = _continued(line, escape)
        i += 1
        if body is None:
            parts.append(line)
            break
        parts.append(body)
        while i < len(lines) and (not lines[i].strip() or lines[i].lstrip().startswith("#")):
            if not lines[i].strip():
                notes.append(f"line {i + 1}: an empty continuation line (deprecated by Docker)")
            i += 1
        if i >= len(lines):
            break
        line = lines[i]  # continuation lines keep their leading white space, as Docker does
    logical = "".join(parts).strip()
    if not logical:
        raise BuildError(
            f"Dockerfile line {first}: the line ends with the escape character {escape}, so it "
            "continues onto the next, but no instruction follows",
            f"remove the trailing {escape}, or write the instruction (FROM, RUN, ...) after it",
            line=first,
        )
    keyword, rest = [*logical.split(maxsplit=1), ""][:2]
    upper = keyword.upper()
    if upper not in INSTRUCTIONS:
        raise _unknown(keyword, first)
    flags: list[tuple[str, str]] = []
    if upper in FLAGGED:
        flags, rest = _flags(rest)
    heredocs: list[Heredoc] = []
    if upper in HEREDOC_FORMS and HEREDOC.search(rest):
        heredocs, i = _heredocs(lines, i, rest, first)
    if upper in NEEDS_ARGS and not rest and not heredocs:
        raise BuildError(f"Dockerfile line {first}: {upper} needs arguments", SYNTAX_HINT, line=first)
    return (
        Instruction(
            upper,
            rest,
            first,
            logical,
            tuple(flags),
            _json_form(upper, rest, first),
            tuple(heredocs),
        ),
        i,
        notes,
    )


def _unknown(keyword: str, line: int) -> BuildError:
    close = difflib.get_close_matches(keyword.upper(), INSTRUCTIONS, n=1, cutoff=0.6)
    guess = f"did you mean {close[0]}? " if close else ""
    return BuildError(
        f"Dockerfile line {line}: unknown instruction {keyword}",
        f"{guess}instructions are {', '.join(INSTRUCTIONS)}",
        line=line,
    )


def _flags(rest: str) -> tuple[list[tuple[str, str]], str]:
    flags: list[tuple[str, str]] = []
    while rest.startswith("--"):
        token, _, rest = rest.partition(" ")
        name, _, value = token[2:].partition("=")
        flags.append((name.lower(), value))
        rest = rest.strip()
    return flags, rest


def _heredocs(lines: list[str], i: int, rest: str, first: int) -> tuple[list[Heredoc], int]:
    found = []
    for match in HEREDOC.finditer(rest):
        strip_tabs, quote, name = match.group(1) == "-", match.group(2), match.group(3)
        body: list[str] = []
        while True:
            if i >= len(lines):
                raise BuildError(
                    f"Dockerfile line {first}: the heredoc <<{name} has no closing {name} line",
                    f"end it with a line that holds only {name}",
                    line=first,
                )
            text = lines[i].lstrip("\t") if strip_tabs else lines[i]
            i += 1
            if text == name:
                break
            body.append(text + "\n")
        found.append(Heredoc(name, "".join(body), expand=not quote))
    return found, i


def _json_form(keyword: str, rest: str, line: int) -> tuple[str, ...] | None:
    if keyword not in JSON_FORMS:
        return None
    value = (
        rest[len("CMD") :].strip() if keyword == "HEALTHCHECK" and rest.upper().startswith("CMD") else rest
    )
    if not value.startswith("["):
        if keyword == "SHELL":
            raise BuildError(
                f'Dockerfile line {line}: SHELL needs the JSON form, e.g. SHELL ["/bin/bash", "-c"]',
                SYNTAX_HINT,
                line=line,
            )
        return None
    try:
        parsed = json.loads(value)
    except ValueError:
        parsed = None
    if isinstance(parsed, list) and all(isinstance(p, str) for p in parsed):
        return tuple(parsed)
    if keyword in ("SHELL", "COPY", "ADD", "VOLUME"):
        raise BuildError(
            f"Dockerfile line {line}: {keyword} has an invalid JSON array: {value}",
            'write it as a JSON array of strings in double quotes, e.g. ["a", "b"]',
            line=line,
        )
    return None  # RUN, CMD and ENTRYPOINT fall back to the shell form, as Docker does


def _stages(
    instructions: list[Instruction], directives: dict[str, str], escape: str, warnings: list[str]
) -> Dockerfile:
    if not instructions:
        raise EmptyDockerfileError(
            "Dockerfile line 1: the Dockerfile is empty: it has no instructions",
            "start it with FROM, e.g. FROM python:3.12-slim",
            line=1,
        )
    global_args: list[Instruction] = []
    stages: list[Stage] = []
    current: list[Instruction] = []
    for instruction in instructions:
        if instruction.keyword == "FROM":
            if stages:
                stages[-1] = Stage(stages[-1].index, stages[-1].name, stages[-1].from_, tuple(current))
            stages.append(Stage(len(stages), _stage_name(instruction, stages), instruction, ()))
            current = []
        elif not stages and instruction.keyword == "ARG":
            global_args.append(instruction)
        elif not stages:
            raise BuildError(
                f"Dockerfile line {instruction.line}: {instruction.keyword} comes before the first FROM",
                "a Dockerfile starts with FROM (only ARG may come before it)",
                line=instruction.line,
            )
        else:
            current.append(instruction)
    if not stages:
        line = global_args[-1].line
        raise BuildError(
            f"Dockerfile line {line}: the Dockerfile has only ARG instructions and no FROM",
            "add a FROM line after the ARGs, e.g. FROM python:3.12-slim",
            line=line,
        )
    last = stages[-1]
    stages[-1] = Stage(last.index, last.name, last.from_, tuple(current))
    return Dockerfile(tuple(stages), tuple(global_args), directives, escape, tuple(warnings))


def _stage_name(instruction: Instruction, stages: list[Stage]) -> str:
    parts = instruction.value.split()
    if len(parts) == 1:
        return ""
    if len(parts) != 3 or parts[1].upper() != "AS":
        raise BuildError(
            f"Dockerfile line {instruction.line}: FROM takes an image and optionally AS name, "
            f"not {instruction.value!r}",
            "write FROM image[:tag] [AS name]",
            line=instruction.line,
        )
    name = parts[2].lower()
    if not re.fullmatch(r"[a-z][a-z0-9._-]*", name):
        raise BuildError(
            f"Dockerfile line {instruction.line}: invalid stage name {parts[2]!r}",
            "a stage name starts with a letter and holds letters, digits, '.', '_' and '-'",
            line=instruction.line,
        )
    if any(s.name == name for s in stages):
        raise BuildError(
            f"Dockerfile line {instruction.line}: a stage named {name!r} already exists",
            "give each stage its own name",
            line=instruction.line,
        )
    return name
