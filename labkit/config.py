"""The notebook's defaults for labkit, as traitlets configuration: ``%config Lab.timeout = 30``.

Naming. traitlets matches a ``%config NAME.option`` line against the *class names* of the
objects in ``shell.configurables``, so the settings class is called ``Lab`` (exported here
also as :data:`LabConfig`, the name the rest of labkit uses). The facade
:class:`labkit.lab.Lab` is a different, plain class: it is not configurable itself and reads
these settings (:func:`settings`) each time it needs a default, so a ``%config`` line takes
effect for Labs that exist already.

How the magics register it (in ``load_ipython_extension``)::

    from labkit.config import settings

    lab_config = settings()
    lab_config.update_config(shell.config)   # options set before %load_ext (ipython_config.py)
    if lab_config not in shell.configurables:
        shell.configurables.append(lab_config)   # %config Lab / %config Lab.timeout = 30 now work

``%config Lab`` then lists every option with its help text.
"""

from __future__ import annotations

from traitlets import Bool, CaselessStrEnum, Float, Int, TraitError, Unicode, validate
from traitlets.config import Configurable

TARGETS = ("auto", "embedded", "kind", "kubeconfig")
BALANCING = ("random", "round-robin")


class Lab(Configurable):
    """labkit's defaults for this notebook (``%config Lab.<option> = value``)."""

    target = CaselessStrEnum(
        TARGETS,
        default_value="auto",
        help="Where labkit.connect() runs workloads: embedded (labkit's own local cluster), kind, "
        "kubeconfig (the current context of your kubeconfig), or auto: the LABKIT_TARGET "
        "environment variable, else embedded.",
    ).tag(config=True)
    namespace = Unicode("default", help="The namespace a new Lab works in (lab.use(NAME) switches).").tag(
        config=True
    )
    timeout = Float(
        120.0, help="Seconds to wait for rollouts and readiness before reporting what is not ready."
    ).tag(config=True)
    short_errors = Bool(
        True,
        help="Show labkit errors as one short message with a hint, without a traceback. "
        "Set to False to see the full traceback.",
    ).tag(config=True)
    balancing = CaselessStrEnum(
        BALANCING,
        default_value="random",
        help="How the embedded cluster's Services spread connections by default: random "
        "(as kube-proxy's iptables mode) or round-robin (as IPVS). Applies when the cluster starts.",
    ).tag(config=True)
    seed = Int(
        None,
        allow_none=True,
        help="Seed for the embedded cluster's generated names and balancing, to make runs "
        "repeatable (None: random). Applies when the cluster starts.",
    ).tag(config=True)

    @validate("timeout")
    def _positive_timeout(self, proposal: dict[str, float]) -> float:
        if proposal["value"] <= 0:
            raise TraitError(f"Lab.timeout must be more than 0 seconds, not {proposal['value']}")
        return proposal["value"]


LabConfig = Lab  # the name used in code; the class is called Lab so that %config Lab.x matches

_settings: LabConfig | None = None


def settings() -> LabConfig:
    """The one settings object of this process (made on first use)."""
    global _settings
    if _settings is None:
        _settings = LabConfig()
    return _settings
