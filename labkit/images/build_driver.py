"""The embedded builder's driver: which stages a build needs, each stage step by step, and the
image it stores.

Every step has a cache key (:mod:`~labkit.images.cache_keys`); a step whose key is in the
layer cache is not run (``CACHED``) and its layer is applied only if a later step needs the
files. Otherwise the instruction's handler (:mod:`~labkit.images.metadata_steps`,
:mod:`~labkit.images.copy_steps`, :mod:`~labkit.images.runstep`) gives the step's action, and
what it changed in the root becomes a layer. FROM is handled here: a base from the catalog,
an image labkit built, or an earlier stage. The final stage is stored as an image, unless the
same image is already there.
"""

from __future__ import annotations

import hashlib
import json
import stat
import time

from labkit.errors import BuildError
from labkit.images import cache_keys, catalog, copy_steps, metadata_steps, runstep
from labkit.images.build_context import BuildContext
from labkit.images.build_state import BuildState, Handler, StageState, Step, now
from labkit.images.dockerfile import Instruction
from labkit.images.layers import LayerInfo, changes, relocate, snapshot
from labkit.images.models import BuildResult, HistoryEntry
from labkit.images.steps import architecture, base_creator

HANDLERS: dict[str, Handler] = {**metadata_steps.HANDLERS, **copy_steps.HANDLERS, **runstep.HANDLERS}
"""The handler of every instruction but FROM, by keyword."""


class Builder(BuildState):
    """One build, run by :meth:`run`."""

    def run(self, ctx: BuildContext, target: str | None, tag: str | None) -> BuildResult:
        """Build the target stage (and the stages it needs); store and tag the image."""
        self.ctx = ctx
        final = self._target(target)
        needed = self._needed(final)
        self.total = sum(len(self.df.stages[i].steps) for i in needed)
        with self.store.workspace() as space:
            for index in needed:
                state = StageState(self.df.stages[index], space / f"stage-{index}")
                state.dir.mkdir()
                self.states[index] = state
                self._stage(state)
            unused = sorted(set(self.build_args) - self.consumed)
            if unused:
                self.warnings.append(
                    f"build-args {', '.join(unused)} were not consumed (no ARG declares them)"
                )
            image_id, size = self._commit(self.states[final])
        name = self.store.tag(tag, image_id) if tag else ""
        state = self.states[final]
        return BuildResult(
            name,
            image_id,
            size,
            self.hits,
            self.total,
            tuple(state.history),
            tuple(self.warnings),
            "embedded",
        )

    def _target(self, target: str | None) -> int:
        """The index of the stage to build: ``target``, or the last."""
        if target is None:
            return len(self.df.stages) - 1
        stage = self.df.stage(target)
        if stage is None:
            names = ", ".join(s.label for s in self.df.stages)
            raise BuildError(f"target stage {target!r} not found", f"the stages are: {names}")
        return stage.index

    def _needed(self, final: int) -> list[int]:
        """The stages ``final`` needs (FROM or COPY --from an earlier stage), in order."""
        needed: set[int] = set()
        todo = [final]
        while todo:
            index = todo.pop()
            if index in needed:
                continue
            needed.add(index)
            stage = self.df.stages[index]
            refs = [self.expand(stage.base, self.global_args, stage.from_)]
            refs += [i.flag("from") or "" for i in stage.instructions if i.keyword in ("COPY", "ADD")]
            for ref in refs:
                found = self.df.stage(ref) if ref else None
                if found is not None and found.index < index:
                    todo.append(found.index)
        return sorted(needed)

    def _stage(self, st: StageState) -> None:
        """Build one stage: its FROM, then each instruction, from the cache or run."""
        self._from(st)
        for ins in st.stage.instructions:
            self.number += 1
            step = HANDLERS[ins.keyword](self, st, ins)
            key = cache_keys.step_key(st.key, step.material)
            info = self.cache.find(key)
            if info is not None:
                self._cached(st, ins, key, info)
            else:
                info = self._execute(st, ins, key, step)
            st.key = key
            st.history.append(HistoryEntry(info.created_by, info.created, info.size, info.empty))

    def _cached(self, st: StageState, ins: Instruction, key: str, info: LayerInfo) -> None:
        """A step found in the cache: its layer, applied only if the root is already real."""
        self.hits += 1
        self.emit(ins, st.stage.label, "cached")
        if not info.empty:
            st.layers.append(key)
            if st.materialized:
                self.cache.apply(info, st.root)
                st.relocated |= set(info.relocate)
                st.snap = None

    def _execute(self, st: StageState, ins: Instruction, key: str, step: Step) -> LayerInfo:
        """Run a step's action and commit what it changed as the layer of ``key``."""
        self.emit(ins, st.stage.label, "start")
        began = time.monotonic()
        paths: list[str] = []
        deleted: list[str] = []
        if step.action is not None:
            self.materialize(st)
            before = st.snap if st.snap is not None else snapshot(st.root)
            try:
                touched = step.action()
            except BuildError:
                self.emit(ins, st.stage.label, "error", seconds=time.monotonic() - began)
                raise
            st.snap = snapshot(st.root)
            changed, deleted = changes(before, st.snap)
            paths = sorted(set(changed) | {p for p in touched if p in st.snap})
        info = self.cache.commit(key, ins.original, now(), st.root, paths, deleted, step.relocatable)
        if not info.empty:
            st.layers.append(key)
            st.relocated |= set(info.relocate)
        self.emit(ins, st.stage.label, "done", seconds=time.monotonic() - began)
        return info

    # -- FROM ----------------------------------------------------------------------------------

    def _from(self, st: StageState) -> None:
        """A stage's FROM: an earlier stage, an image labkit built, or a catalog base."""
        ins = st.stage.from_
        self.number += 1
        for name, value in ins.flags:
            if name == "platform":
                self.warn(ins, f"FROM --platform={value} is ignored: images run on this machine's platform")
            else:
                raise BuildError(
                    f"Dockerfile line {ins.line}: FROM has no flag --{name}", "remove it", line=ins.line
                )
        reference = self.expand(st.stage.base, self.global_args, ins)
        parent = self.df.stage(reference)
        if parent is not None and parent.index in self.states:
            self._from_stage(st, self.states[parent.index])
            self.hits += 1
            self.emit(ins, st.stage.label, "cached")
            return
        base = catalog.resolve(reference, self.store, ins.line)
        st.base = base
        self.warnings.extend(base.warnings)
        config = dict(base.config)
        st.env = dict(str(e).split("=", 1) for e in config.pop("Env", None) or [] if "=" in str(e))  # type: ignore[union-attr]
        st.config = config
        if base.image is not None:
            st.key = cache_keys.image_key(base.image.id, self.salt)
            st.layers = list(base.image.layers)
            st.history = [
                HistoryEntry(h.get("created_by", ""), h.get("created", ""), 0, bool(h.get("empty_layer")))
                for h in base.image.config.get("history") or []
            ]
            self.hits += 1
            self.emit(ins, st.stage.label, "cached")
            return
        key = cache_keys.base_key(base.key, self.salt)
        info = self.cache.find(key)
        if info is not None:
            self._cached(st, ins, key, info)
        else:
            info = self._execute(st, ins, key, Step(key, base_creator(base, st.root), relocatable=True))
        st.key = key
        st.history.append(HistoryEntry(f"FROM {reference}", info.created, info.size, info.empty))

    def _from_stage(self, st: StageState, parent: StageState) -> None:
        """FROM an earlier stage: start from its key, layers, config and history."""
        st.base, st.key, st.layers = parent.base, parent.key, list(parent.layers)
        st.env, st.config, st.history = dict(parent.env), dict(parent.config), list(parent.history)

    # -- the image ---------------------------------------------------------------------------------

    def _commit(self, st: StageState) -> tuple[str, int]:
        """Store the stage as an image (unless the same image is there); its ID and size."""
        base = st.base
        config = {**st.config, "Env": [f"{k}={v}" for k, v in st.env.items()]}
        document = {
            "architecture": architecture(),
            "os": "linux",
            "created": st.history[-1].created if st.history else "",
            "config": config,
            "history": [
                {
                    "created": h.created,
                    "created_by": h.created_by,
                    **({"empty_layer": True} if h.empty_layer else {}),
                }
                for h in st.history
            ],
            "rootfs": {"type": "layers", "diff_ids": ["sha256:" + k for k in st.layers]},
            "labkit": {
                "layers": st.layers,
                "chain": st.key,
                "base": base.reference if base else "",
                "describe": base.describe if base else "",
                "parent": base.image.id if base and base.image else "",
                "shell": base.has_shell if base else True,
                "python": base.python if base else False,
            },
        }
        blob = json.dumps(document, sort_keys=True, separators=(",", ":"))
        image_id = "sha256:" + hashlib.sha256(blob.encode()).hexdigest()
        existing = self.store.find(image_id)
        if existing is not None:
            return image_id, existing.size
        self.materialize(st)
        size = sum(v[1] for v in snapshot(st.root).values() if stat.S_ISREG(v[0]))
        final = self.store.image_path(image_id)
        relocate(st.root, st.relocated, st.root, final / "rootfs")
        (st.dir / "config.json").write_text(blob)
        (st.dir / "info.json").write_text(json.dumps({"size": size, "created": now()}))
        self.store.commit_image(st.dir, image_id)
        return image_id, size
