"""A container's image, pulled per its ``imagePullPolicy`` with kubelet's events and waiting reasons.

Pulling/Pulled (or "already present on machine"), ErrImageNeverPull, and ErrImagePull followed
by ImagePullBackOff for the pull back-off; an image built on this machine cannot be pulled, so
pull policy Always fails for it with a hint.
"""

from __future__ import annotations

import asyncio
import time
from typing import TYPE_CHECKING

from labkit.embedded.kubelet.backoff import go_duration
from labkit.embedded.runnable_images import BUILTIN_HINT, Image, split_reference

if TYPE_CHECKING:
    from labkit.embedded.kubelet.containerhost import ContainerHost


async def pull(runner: ContainerHost) -> Image | None:
    """The container's image, pulled per its pull policy; None if the pod goes away first."""
    store = runner.worker.kubelet.images
    while not runner.worker.terminating.is_set():
        reference = str(runner.spec.get("image") or "")
        policy = runner.spec.get("imagePullPolicy") or "IfNotPresent"
        image = store.resolve(reference)
        if image is not None and policy != "Always":
            runner.event("Normal", "Pulled", f'Container image "{reference}" already present on machine')
            _note(runner, image)
            return image
        if policy == "Never":
            message = f'Container image "{reference}" is not present with pull policy of Never'
            runner.record.waiting("ErrImageNeverPull", message)
            runner.event("Warning", "ErrImageNeverPull", message)
            runner.event("Warning", "Failed", "Error: ErrImageNeverPull")
            runner.worker.attempted(runner)
            runner.worker.publish()
            await runner.sleep(runner.worker.kubelet.ctx.config.backoff_base)
            continue
        started = time.monotonic()
        runner.event("Normal", "Pulling", f'Pulling image "{reference}"')
        download = getattr(store, "pull", None)
        if image is None and download is not None:
            image = await asyncio.to_thread(download, reference)  # a download: off the event loop
        if image is not None and not image.local:
            took = go_duration(time.monotonic() - started)
            runner.event(
                "Normal",
                "Pulled",
                f'Successfully pulled image "{reference}" in {took} ({took} including waiting). '
                f"Image size: {image.size} bytes.",
            )
            _note(runner, image)
            return image
        if not await _pull_failed(runner, reference, local=image is not None):
            return None
    return None


def _note(runner: ContainerHost, image: Image) -> None:
    """Warn when the image is not quite what its tag asks for (another Python, say)."""
    if image.note:
        runner.event("Warning", "ImageVersion", image.note)


async def _pull_failed(runner: ContainerHost, reference: str, local: bool) -> bool:
    """ErrImagePull, then ImagePullBackOff for the back-off; False if the pod goes away.
    ``local``: the image is here but was built here, so pull policy Always cannot pull it."""
    repository, tag = split_reference(reference)
    if tag == "latest":
        why = 'imagePullPolicy is Always (the default for ":latest" or no tag), so it must be pulled'
        fix = f"give the image a version tag (labkit build -t {repository}:1.0) or set "
    else:
        # the tag is a version, so Always came from the spec: written there by hand, or filled
        # in by defaulting when the pod template was first created with an untagged image
        why = (
            "the container's imagePullPolicy is Always (set in the manifest, or defaulted when the "
            'template was first applied with an untagged or ":latest" image, and kept since), '
            "so it must be pulled"
        )
        fix = "set "
    error = (
        f'image "{repository}:{tag}" was built on this machine and no registry has it, but {why}: '
        f"{fix}imagePullPolicy: IfNotPresent"
        if local
        else f'image "{repository}:{tag}" not found: {BUILTIN_HINT}'
    )
    runner.record.waiting("ErrImagePull", error)
    runner.event("Warning", "Failed", f'Failed to pull image "{reference}": {error}')
    runner.event("Warning", "Failed", "Error: ErrImagePull")
    runner.worker.attempted(runner)
    runner.worker.publish()
    delay = runner.worker.kubelet.pull_backoff.wait_after_failure(runner.key)
    shown = min(1.0, delay / 2)
    if await runner.sleep(shown):
        return not runner.worker.terminating.is_set()
    runner.record.waiting("ImagePullBackOff", f'Back-off pulling image "{reference}": ErrImagePull: {error}')
    runner.event("Normal", "BackOff", f'Back-off pulling image "{reference}"')
    runner.event("Warning", "Failed", "Error: ImagePullBackOff")
    runner.worker.publish()
    await runner.sleep(delay - shown)
    return not runner.worker.terminating.is_set()
