"""kube-proxy's part: Service traffic routed to ready endpoints.

``router.py`` (ServiceRouter: a connection or request of a Service to one endpoint),
``table.py`` (the Services and their endpoints, kept from watches), ``balancer.py`` (random,
round-robin and client-IP affinity), ``listeners.py`` (the cluster IP and node port listeners),
``records.py`` (which pod served each request, for lab.traffic()).
"""
