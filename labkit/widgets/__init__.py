"""Widgets: the two pictures of the workshop, live in JupyterLab and still readable elsewhere.

- :class:`~labkit.widgets.pods_per_node.PodsPerNode`: one box per node, one tile per pod.
- :class:`~labkit.widgets.request_distribution.RequestDistribution`: a bar per replica of a
  Service, growing while the requests are sent.

They take plain models (:mod:`labkit.kube.models`) and callables, never a backend or a client:
the Lab (:mod:`labkit.lab.pictures`) feeds them. Each carries a static PNG in its mimebundle
(nbviewer, GitHub, a notebook not yet run) and a short, deterministic ``text/plain`` (nbval).
"""
