"""The embedded builder's handlers of instructions that set the image's config, not its files:
ENV, ARG, LABEL, MAINTAINER, WORKDIR, USER, EXPOSE, CMD, ENTRYPOINT, SHELL, STOPSIGNAL, VOLUME,
ONBUILD and HEALTHCHECK. Each updates the stage and returns its :class:`Step` (WORKDIR's also
makes the directory).
"""

from __future__ import annotations

import json
import posixpath

from labkit.errors import BuildError
from labkit.images.build_state import BuildState, Handler, StageState, Step
from labkit.images.dockerfile import Instruction
from labkit.images.steps import duration_ns

HEALTHCHECK_FLAGS = {
    "interval": "Interval", "timeout": "Timeout", "start-period": "StartPeriod",
    "start-interval": "StartInterval", "retries": "Retries",
}  # fmt: skip


def pairs(b: BuildState, st: StageState, ins: Instruction) -> list[tuple[str, str]]:
    """The ``NAME=value`` pairs of ENV or LABEL (or the legacy ``ENV NAME value``), substituted."""
    found = b.words(ins.value, st.subst(), ins)
    if found and "=" not in found[0]:
        name, _, rest = ins.value.partition(" ")
        return [(name, b.expand(rest.strip(), st.subst(), ins))]
    result = []
    for word in found:
        name, eq, value = word.partition("=")
        if not eq or not name:
            raise BuildError(
                f"Dockerfile line {ins.line}: {ins.keyword} needs NAME=value, not {word!r}",
                f"write {ins.keyword} NAME=value (quote values with spaces)",
                line=ins.line,
            )
        result.append((name, value))
    return result


def env_step(b: BuildState, st: StageState, ins: Instruction) -> Step:
    """ENV: variables of later steps and of the image."""
    found = pairs(b, st, ins)
    st.env.update(found)
    return Step("ENV " + json.dumps(found))


def label_step(b: BuildState, st: StageState, ins: Instruction) -> Step:
    """LABEL: the image's labels."""
    found = pairs(b, st, ins)
    labels = dict(st.config.get("Labels") or {})  # type: ignore[call-overload]
    labels.update(found)
    st.config["Labels"] = labels
    return Step("LABEL " + json.dumps(found))


def maintainer_step(b: BuildState, st: StageState, ins: Instruction) -> Step:
    """MAINTAINER (deprecated): the image's author."""
    b.warn(ins, "MAINTAINER is deprecated: use LABEL org.opencontainers.image.authors=...")
    st.config["Author"] = ins.value
    return Step("MAINTAINER " + ins.value)


def arg_step(b: BuildState, st: StageState, ins: Instruction) -> Step:
    """ARG: a build argument's value in this stage (given, default, or the global ARG's)."""
    declared = []
    for word in b.words(ins.value, st.subst(), ins):
        name, eq, default = word.partition("=")
        if name in b.build_args:
            st.args[name] = b.build_args[name]
            b.consumed.add(name)
        elif eq:
            st.args[name] = default
        elif name in b.global_args:
            st.args[name] = b.global_args[name]
        declared.append(name)
    # the key holds the names only: as with Docker, a changed value misses the cache where it
    # is first used (a RUN sees every ARG in its environment; ENV and others once expanded)
    return Step("ARG " + json.dumps(declared))


def workdir_step(b: BuildState, st: StageState, ins: Instruction) -> Step:
    """WORKDIR: the working directory of later steps and of containers; it is made."""
    path = posixpath.normpath(posixpath.join(st.workdir, b.expand(ins.value, st.subst(), ins)))
    st.config["WorkingDir"] = path

    def action() -> set[str]:
        (st.root / path.lstrip("/")).mkdir(parents=True, exist_ok=True)
        return set()

    return Step("WORKDIR " + path, action)


def shell_form(st: StageState, ins: Instruction) -> list[str]:
    """The argv of CMD or ENTRYPOINT: the JSON form, or the text run by the stage's shell."""
    if ins.json is not None:
        return list(ins.json)
    return [*st.shell, ins.value]


def cmd_step(b: BuildState, st: StageState, ins: Instruction) -> Step:
    """CMD: the containers' default command."""
    st.config["Cmd"] = shell_form(st, ins)
    st.cmd_set = True
    return Step("CMD " + json.dumps(st.config["Cmd"]))


def entrypoint_step(b: BuildState, st: StageState, ins: Instruction) -> Step:
    """ENTRYPOINT: the containers' program."""
    st.config["Entrypoint"] = shell_form(st, ins)
    if not st.cmd_set:
        st.config.pop("Cmd", None)  # as Docker: ENTRYPOINT resets the CMD a base image set
    return Step("ENTRYPOINT " + json.dumps(st.config["Entrypoint"]))


def shell_step(b: BuildState, st: StageState, ins: Instruction) -> Step:
    """SHELL: the shell of later shell-form instructions."""
    st.config["Shell"] = list(ins.json or ())
    return Step("SHELL " + json.dumps(st.config["Shell"]))


def expose_step(b: BuildState, st: StageState, ins: Instruction) -> Step:
    """EXPOSE: the image's ports (ranges too; tcp unless said)."""
    ports = dict(st.config.get("ExposedPorts") or {})  # type: ignore[call-overload]
    for word in b.words(ins.value, st.subst(), ins):
        number, _, proto = word.partition("/")
        low, _, high = number.partition("-")
        if not low.isdigit() or (high and not high.isdigit()) or proto not in ("", "tcp", "udp", "sctp"):
            raise BuildError(
                f"Dockerfile line {ins.line}: EXPOSE {word}: not a port",
                "write EXPOSE 8080 or EXPOSE 8080/tcp (or a range, 8000-8010)",
                line=ins.line,
            )
        for port in range(int(low), int(high or low) + 1):
            ports[f"{port}/{proto or 'tcp'}"] = {}
    st.config["ExposedPorts"] = ports
    return Step("EXPOSE " + json.dumps(sorted(ports)))


def user_step(b: BuildState, st: StageState, ins: Instruction) -> Step:
    """USER: recorded in the image only (steps and containers run as the user who builds)."""
    st.config["User"] = b.expand(ins.value, st.subst(), ins)
    b.warn(
        ins,
        f"USER {st.config['User']} is recorded in the image; RUN steps and containers run as you",
    )
    return Step("USER " + str(st.config["User"]))


def stopsignal_step(b: BuildState, st: StageState, ins: Instruction) -> Step:
    """STOPSIGNAL: the signal that stops the containers."""
    st.config["StopSignal"] = b.expand(ins.value, st.subst(), ins)
    return Step("STOPSIGNAL " + str(st.config["StopSignal"]))


def volume_step(b: BuildState, st: StageState, ins: Instruction) -> Step:
    """VOLUME: recorded in the image only."""
    paths = list(ins.json) if ins.json is not None else b.words(ins.value, st.subst(), ins)
    volumes = dict(st.config.get("Volumes") or {})  # type: ignore[call-overload]
    volumes.update({p: {} for p in paths})
    st.config["Volumes"] = volumes
    b.warn(
        ins,
        "VOLUME is recorded in the image; the embedded cluster mounts only the volumes a pod declares",
    )
    return Step("VOLUME " + json.dumps(sorted(volumes)))


def onbuild_step(b: BuildState, st: StageState, ins: Instruction) -> Step:
    """ONBUILD: an instruction recorded for builds FROM this image."""
    st.config["OnBuild"] = [*(st.config.get("OnBuild") or []), ins.value]  # type: ignore[misc]
    return Step("ONBUILD " + ins.value)


def healthcheck_step(b: BuildState, st: StageState, ins: Instruction) -> Step:
    """HEALTHCHECK: recorded in the image (Kubernetes runs probes, not this)."""
    if ins.value.upper() == "NONE":
        st.config["Healthcheck"] = {"Test": ["NONE"]}
        return Step("HEALTHCHECK NONE")
    if not ins.value.upper().startswith("CMD"):
        raise BuildError(
            f"Dockerfile line {ins.line}: HEALTHCHECK needs CMD or NONE",
            "write HEALTHCHECK [--interval=30s] CMD command",
            line=ins.line,
        )
    check: dict[str, object] = {}
    for name, value in ins.flags:
        field_name = HEALTHCHECK_FLAGS.get(name)
        if field_name is None:
            raise BuildError(
                f"Dockerfile line {ins.line}: HEALTHCHECK has no flag --{name}",
                "remove it",
                line=ins.line,
            )
        check[field_name] = int(value) if name == "retries" else duration_ns(value, ins)
    command = ins.value[3:].strip()
    check["Test"] = ["CMD", *ins.json] if ins.json is not None else ["CMD-SHELL", command]
    st.config["Healthcheck"] = check
    b.warn(ins, "HEALTHCHECK is recorded in the image; Kubernetes does not run it (use a livenessProbe)")
    return Step("HEALTHCHECK " + json.dumps(check, sort_keys=True))


HANDLERS: dict[str, Handler] = {
    "ENV": env_step,
    "ARG": arg_step,
    "LABEL": label_step,
    "MAINTAINER": maintainer_step,
    "WORKDIR": workdir_step,
    "USER": user_step,
    "EXPOSE": expose_step,
    "CMD": cmd_step,
    "ENTRYPOINT": entrypoint_step,
    "SHELL": shell_step,
    "STOPSIGNAL": stopsignal_step,
    "VOLUME": volume_step,
    "ONBUILD": onbuild_step,
    "HEALTHCHECK": healthcheck_step,
}
"""The handler of each metadata instruction, by keyword."""
