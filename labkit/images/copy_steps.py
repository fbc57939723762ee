"""The embedded builder's handlers of the instructions that put files in the image: COPY and
ADD, from the build context, from an earlier stage or image (``--from``), or from heredocs.

The cache-key material of a COPY from the context holds a hash of the files it copies; one
``--from`` holds the source stage's key or image's ID. ADD also unpacks a local tar archive;
it does not download (URLs and git are errors that say so).
"""

from __future__ import annotations

import json
import os
import posixpath
import re
from collections.abc import Callable
from pathlib import Path

from labkit.errors import BuildError
from labkit.images.build_state import BuildState, Handler, StageState, Step
from labkit.images.dockerfile import Instruction
from labkit.images.steps import check_many, chmod_flag, extract, is_archive, place, target_path

COPY_FLAGS = {"from", "chown", "chmod", "link"}
ADD_FLAGS = COPY_FLAGS | {"checksum", "keep-git-dir"}
REMOTE = re.compile(r"^(https?|git|ssh)://|^git@")


def copy_step(b: BuildState, st: StageState, ins: Instruction) -> Step:
    """COPY: files from the context, another stage or image, or heredocs."""
    return _copy(b, st, ins, add=False)


def add_step(b: BuildState, st: StageState, ins: Instruction) -> Step:
    """ADD: as COPY, and a local tar archive is unpacked."""
    return _copy(b, st, ins, add=True)


def _copy(b: BuildState, st: StageState, ins: Instruction, add: bool) -> Step:
    allowed = ADD_FLAGS if add else COPY_FLAGS
    for name, value in ins.flags:
        if name not in allowed:
            raise BuildError(
                f"Dockerfile line {ins.line}: {ins.keyword} --{name} is not supported by this builder",
                f"remove it; {ins.keyword} takes --from, --chown, --chmod and --link",
                line=ins.line,
            )
        if name == "chown":
            b.warn(ins, f"{ins.keyword} --chown={value} is ignored: files belong to your own user")
    args = list(ins.json) if ins.json is not None else b.words(ins.value, st.subst(), ins)
    if len(args) < 2:
        raise BuildError(
            f"Dockerfile line {ins.line}: {ins.keyword} needs a source and a destination",
            f"write {ins.keyword} SOURCE... DEST, e.g. {ins.keyword} server.py /app/",
            line=ins.line,
        )
    sources, dest = args[:-1], args[-1]
    mode = chmod_flag(ins)
    if ins.heredocs:
        return _copy_heredocs(b, st, ins, sources, dest, mode)
    source = ins.flag("from")
    if source:
        return _copy_from(b, st, ins, b.expand(source, b.global_args, ins), sources, dest, mode)
    for src in sources:
        if add and REMOTE.match(src):
            raise BuildError(
                f"Dockerfile line {ins.line}: ADD {src}: labkit's builder does not download files",
                "download the file into the build context and COPY it",
                line=ins.line,
            )
    ctx = b.ctx
    selected = [m for src in sources for m in ctx.select(src, ins.original, ins.line)]
    check_many(ins, len(selected), dest)
    digest = ctx.digest([e for _, entries in selected for e in entries])
    material = f"{ins.keyword} " + json.dumps([[m for m, _ in selected], dest, mode, digest])

    def action() -> set[str]:
        touched: set[str] = set()
        for match, entries in selected:
            base = ctx.root / match if match else ctx.root
            many = len(selected) > 1 or base.is_dir()
            for entry in entries:
                src = ctx.path(entry)
                rel = os.path.relpath(src, base) if base.is_dir() and src != base else ""
                if add and entry.kind == "file" and not rel and is_archive(src):
                    touched |= extract(src, target_path(st.root, st.workdir, dest, "", True))
                    continue
                target = target_path(st.root, st.workdir, dest, rel or posixpath.basename(entry.path), many)
                touched.add(place(src, target, st.root, mode))
        return touched

    return Step(material, action)


def _copy_from(
    b: BuildState,
    st: StageState,
    ins: Instruction,
    ref: str,
    sources: list[str],
    dest: str,
    mode: int | None,
) -> Step:
    """COPY --from: files of an earlier stage of this build, or of an image labkit built."""
    stage = b.df.stage(ref)
    root_of: Callable[[], Path]
    if stage is not None and stage.index in b.states and stage.index != st.stage.index:
        other = b.states[stage.index]
        origin = other.key

        def stage_root() -> Path:
            b.materialize(other)
            return other.root

        root_of = stage_root
    else:
        image = b.store.find(ref)
        if image is None:
            names = ", ".join(s.label for s in b.df.stages[: st.stage.index]) or "none"
            raise BuildError(
                f"Dockerfile line {ins.line}: {ins.keyword} --from={ref}: no earlier stage and no image "
                f"labkit built has that name",
                f"earlier stages: {names}; images: labkit image ls",
                line=ins.line,
            )
        origin = image.id

        def image_root() -> Path:
            return image.rootfs

        root_of = image_root
    clean = [posixpath.normpath("/" + s) for s in sources]
    material = f"{ins.keyword} --from " + json.dumps([origin, clean, dest, mode])

    def action() -> set[str]:
        root = root_of()
        touched: set[str] = set()
        matches = []
        for src in clean:
            found = (
                sorted(root.glob(src.lstrip("/"))) if re.search(r"[*?\[]", src) else [root / src.lstrip("/")]
            )
            found = [f for f in found if f.exists() or f.is_symlink()]
            if not found:
                raise BuildError(
                    f"Dockerfile line {ins.line}: {ins.keyword} --from={ref}: {src} not found in {ref}",
                    "check the path: it is absolute in that stage's filesystem",
                    line=ins.line,
                )
            matches += found
        check_many(ins, len(matches), dest)
        for match in matches:
            if match.is_dir() and not match.is_symlink():
                for top, dirs, files in os.walk(match):
                    for name in [*dirs, *files]:
                        src = Path(top) / name
                        if src.is_dir() and not src.is_symlink():
                            continue
                        target = target_path(st.root, st.workdir, dest, os.path.relpath(src, match), True)
                        touched.add(place(src, target, st.root, mode))
            else:
                target = target_path(st.root, st.workdir, dest, match.name, len(matches) > 1)
                touched.add(place(match, target, st.root, mode))
        return touched

    return Step(material, action)


def _copy_heredocs(
    b: BuildState, st: StageState, ins: Instruction, sources: list[str], dest: str, mode: int | None
) -> Step:
    """COPY <<EOF: files whose text is in the Dockerfile."""
    bodies = {f"<<{h.name}": h for h in ins.heredocs}
    files = []
    for src in sources:
        doc = bodies.get(src.replace("<<-", "<<").replace("'", "").replace('"', ""))
        if doc is None:
            raise BuildError(
                f"Dockerfile line {ins.line}: {ins.keyword} {src}: only heredocs may be mixed here",
                "copy files and heredocs in separate instructions",
                line=ins.line,
            )
        text = b.expand(doc.body, st.subst(), ins) if doc.expand else doc.body
        files.append((doc.name, text))
    material = f"{ins.keyword} <<" + json.dumps([files, dest, mode])

    def action() -> set[str]:
        touched = set()
        for name, text in files:
            target = target_path(st.root, st.workdir, dest, name, len(files) > 1)
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_text(text)
            if mode is not None:
                os.chmod(target, mode)
            touched.add(str(target.relative_to(st.root)))
        return touched

    return Step(material, action)


HANDLERS: dict[str, Handler] = {"COPY": copy_step, "ADD": add_step}
"""The handler of each file instruction, by keyword."""
