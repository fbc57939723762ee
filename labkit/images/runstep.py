"""The embedded builder's RUN step: its command, where it runs, and its output.

:func:`run_step` prepares a RUN: its flags, its argv (the JSON form, or the stage's shell with
the script or heredoc), the refusal of a distribution's package manager, and its cache-key
material (argv, environment, WORKDIR). Its action runs the command, streaming each output line
as a progress event; a non-zero exit is a :class:`BuildError` with the end of the output.

Where it runs: in the build's root as ``/``, isolated like a container. The step sees the
image being built as ``/`` (so ``WORKDIR /app`` and ``RUN echo x > /app/stamp`` mean what
they say), the host's programs and libraries read-only beneath it
(:func:`labkit.sandbox.view.borrowed`), and for Python images labkit's ``pip``, which
installs into the image's own environment. It cannot write the host: as root it runs as an
unprivileged user. Unlike a pod, it keeps the host's network (``RUN pip install`` reaches the
package index, as ``docker build`` does) and its hostname.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import signal
import subprocess
import sys
from pathlib import Path

from labkit.errors import BuildError
from labkit.images import catalog
from labkit.images.build_state import BuildState, Handler, StageState, Step
from labkit.images.dockerfile import Instruction
from labkit.images.steps import SCRIPT_RUNNER, refuse_package_managers, tools_dir
from labkit.sandbox.isolation import Isolation, IsolationError, detect, own_for
from labkit.sandbox.view import INSIDE_LABKIT, Mount, View, borrowed

TOOLS_INSIDE = f"{INSIDE_LABKIT}/tools"
RUN_FLAGS_IGNORED = {"mount", "network", "security"}
OUTPUT_TAIL = 30  # lines of a failed RUN's output in the error


def run_isolation(ins: Instruction) -> Isolation:
    """The isolation RUN steps use; a :class:`BuildError` naming the line when there is none."""
    try:
        return detect()
    except IsolationError as e:
        raise BuildError(
            f"Dockerfile line {ins.line}: {ins.original}: cannot run the step isolated: {e}",
            "install one of them, or build with the Docker Engine",
            line=ins.line,
        ) from None


def run_view(
    root: Path, workdir: str, env: dict[str, str], tools: Path | None
) -> tuple[View, dict[str, str]]:
    """The view and environment of a RUN step in the build root ``root``."""
    mounts, links = borrowed(root)
    run_env = dict(env)
    path = env.get("PATH") or catalog.DEFAULT_PATH
    if tools is not None:
        venv = Path(sys.prefix)  # labkit's own environment: the pip that installs into the image
        mounts += [Mount(tools, TOOLS_INSIDE), Mount(venv, str(venv))]
        path = f"{TOOLS_INSIDE}/bin:{path}"
        run_env["LABKIT_BUILD_PYTHON"] = sys.executable
        run_env["PYTHONPATH"] = ":".join(p for p in (f"{TOOLS_INSIDE}/python", env.get("PYTHONPATH")) if p)
        run_env["PIP_DISABLE_PIP_VERSION_CHECK"] = "1"
        run_env["PIP_NO_CACHE_DIR"] = "1"
    run_env["PATH"] = path
    run_env.setdefault("HOME", "/root")
    return View(root, workdir or "/", tuple(mounts), None, tuple(links)), run_env


def run_step(b: BuildState, st: StageState, ins: Instruction) -> Step:
    """RUN: a command in the stage's root, with the stage's ARGs and ENV."""
    for name, value in ins.flags:
        if name not in RUN_FLAGS_IGNORED:
            raise BuildError(
                f"Dockerfile line {ins.line}: RUN has no flag --{name}", "remove it", line=ins.line
            )
        b.warn(ins, f"RUN --{name}={value} is ignored by labkit's builder: the step runs without it")
    if st.base is not None and not st.base.has_shell:
        raise BuildError(
            f"Dockerfile line {ins.line}: RUN needs a shell, and {st.base.reference} has none",
            "start the stage FROM busybox or python:3.12-slim if it must RUN commands",
            line=ins.line,
        )
    argv = run_argv(st, ins)
    refuse_package_managers(ins, argv)
    env = {**st.args, **st.env}
    material = "RUN " + json.dumps([argv, sorted(env.items()), st.workdir])
    return Step(material, lambda: _run(b, st, ins, argv, env), relocatable=True)


def run_argv(st: StageState, ins: Instruction) -> list[str]:
    """The command of a RUN: its JSON form, or the stage's shell with the script (or heredoc)."""
    if ins.json is not None:
        return list(ins.json)
    shell = st.shell
    if ins.heredocs and re.fullmatch(r"\s*<<-?\s*['\"]?\w+['\"]?\s*", ins.value):
        body = ins.heredocs[0].body
        if body.startswith("#!"):  # a script with its own interpreter: run it as a file
            return [*shell, SCRIPT_RUNNER.replace("BODY", body)]
        return [*shell, body]
    script = ins.value + "".join(f"\n{h.body}{h.name}" for h in ins.heredocs)
    return [*shell, script]


def _run(b: BuildState, st: StageState, ins: Instruction, argv: list[str], env: dict[str, str]) -> set[str]:
    """Run the command isolated in the stage's root; a failure names the line and shows the output."""
    root = st.root
    (root / st.workdir.lstrip("/")).mkdir(parents=True, exist_ok=True)
    python = st.base is not None and st.base.python
    tools = tools_dir(b.store) if python else None
    view, run_env = run_view(root, st.workdir, env, tools)
    isolation = run_isolation(ins)
    program = view.which(argv[0], run_env["PATH"])
    if program is None:
        raise BuildError(
            f'Dockerfile line {ins.line}: {ins.original}: "{argv[0]}": executable file not found',
            "check the program's name; RUN uses the image's programs, then this machine's",
            line=ins.line,
        )
    made = view.stubs()
    own_for(isolation, root)
    try:
        command = isolation.command(view, [program, *argv[1:]])
        code, tail = _stream(b, st, ins, command, root, run_env)
    finally:
        view.remove_stubs(made)
    if code != 0:
        shown = "\n".join(tail[-OUTPUT_TAIL:])
        raise BuildError(
            f"Dockerfile line {ins.line}: {ins.original} failed with exit code {code}"
            + (f"; its output ends with:\n{shown}" if shown else " (it printed nothing)"),
            "fix the command (try it in a terminal), then build again: the steps before it are cached",
            line=ins.line,
            output="\n".join(tail),
            exit_code=code,
        )
    return set()


def _stream(
    b: BuildState, st: StageState, ins: Instruction, argv: list[str], cwd: Path, env: dict[str, str]
) -> tuple[int, list[str]]:
    """Run ``argv``, sending each output line as an event; its exit code and last lines."""
    tail: list[str] = []
    proc = subprocess.Popen(
        argv, cwd=cwd, env=env, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT, start_new_session=True,
    )  # fmt: skip
    try:
        assert proc.stdout is not None
        for raw in proc.stdout:
            line = raw.decode(errors="replace").rstrip("\n")
            tail = [*tail[-(OUTPUT_TAIL * 4) :], line]
            b.emit(ins, st.stage.label, "output", output=line)
        code = proc.wait()
    except BaseException:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
        raise
    return (128 - code if code < 0 else code), tail


HANDLERS: dict[str, Handler] = {"RUN": run_step}
"""The handler of RUN."""
