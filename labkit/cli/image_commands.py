"""``labkit build`` and ``labkit image ...``: labkit's own builder and image store, printed.

``build`` calls the embedded builder the Lab's embedded target builds with; the image verbs
call :mod:`labkit.images.local`. Only the wording is here.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

from labkit.errors import UsageError
from labkit.images import local as images
from labkit.images.models import BuildStep, human_size


def _print_step(step: BuildStep) -> None:
    """One line of build progress, in BuildKit's plain style."""
    head = f"#{step.number} [{step.stage} {step.number}/{step.total}]"
    if step.state == "start":
        print(f"{head} {step.instruction}", flush=True)
    elif step.state == "cached":
        print(f"{head} {step.instruction}\n#{step.number} CACHED", flush=True)
    elif step.state == "output":
        print(f"#{step.number} {step.output}", flush=True)
    elif step.state == "done":
        print(f"#{step.number} DONE {step.seconds:.1f}s", flush=True)
    else:
        print(f"#{step.number} ERROR (line {step.line})", flush=True)


def _build_args(pairs: list[str]) -> dict[str, str]:
    found = {}
    for pair in pairs:
        name, eq, value = pair.partition("=")
        if not name:
            raise UsageError(f"--build-arg {pair!r} has no name", "write --build-arg NAME=value")
        found[name] = value if eq else os.environ.get(name, "")
    return found


def cmd_build(args: argparse.Namespace) -> int:
    """``labkit build``: build an image with labkit's own builder, showing each step."""
    from labkit.images.embedded_builder import build

    result = build(
        Path(args.context),
        args.tag,
        dockerfile=args.file,
        build_args=_build_args(args.build_arg),
        target=args.target,
        no_cache=args.no_cache,
        progress=None if args.quiet else _print_step,
    )
    for warning in result.warnings:
        print(f"warning: {warning}", file=sys.stderr)
    cached = "all cached" if result.all_cached else f"{result.cache_hits} cached"
    print(
        f"Built {result.tag or result.id[7:19]} ({result.id[7:19]}, {_size(result.size)}) in "
        f"{result.seconds:.2f} s: {result.steps} steps, {cached}"
    )
    return 0


def _size(n: int) -> str:
    """A size as ``docker image ls`` prints it (decimal units, no space)."""
    return human_size(n, separator="")


def cmd_image_ls(args: argparse.Namespace) -> int:
    """``labkit image ls``."""
    rows = [("REPOSITORY", "TAG", "IMAGE ID", "CREATED", "SIZE")]
    for image in images.list_images():
        for name in image.tags or ("<none>:<none>",):
            repository, _, tag = name.rpartition(":")
            rows.append(
                (repository, tag, image.id[7:19], image.created[:19].replace("T", " "), _size(image.size))
            )
    widths = [max(len(r[i]) for r in rows) for i in range(5)]
    for row in rows:
        print("   ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)).rstrip())
    return 0


def cmd_image_inspect(args: argparse.Namespace) -> int:
    """``labkit image inspect``: the image's config as JSON."""
    print(json.dumps([images.inspect(ref) for ref in args.images], indent=2))
    return 0


def cmd_image_tag(args: argparse.Namespace) -> int:
    """``labkit image tag SOURCE TARGET``."""
    images.tag(args.source, args.target)
    return 0


def cmd_image_rm(args: argparse.Namespace) -> int:
    """``labkit image rm``."""
    for ref in args.images:
        for line in images.remove(ref, args.force):
            print(line)
    return 0


def cmd_image_export(args: argparse.Namespace) -> int:
    """``labkit image export``: an OCI image layout."""
    dest = images.export(args.image, Path(args.output), args.format)
    print(f"Wrote {args.image} as an OCI image layout ({args.format}) to {dest}")
    return 0
