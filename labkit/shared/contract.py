"""The strings that cross the client/daemon boundary, as named constants.

The embedded cluster reads and writes these annotations and labels on API objects; the client
side sets or reads them through the Kubernetes API only, never by importing the daemon's code.
"""

from __future__ import annotations

DOMAIN = "labkit.dev"

# Node: "off" powers the node's kubelet off (its containers die); absent: on
POWER_ANNOTATION = f"{DOMAIN}/power"
# Node: how its kubelet isolates containers, in words ("bubblewrap 0.11.0 (user namespaces)")
ISOLATION_ANNOTATION = f"{DOMAIN}/isolation"
# Pod: "simulated" runs no process (for scale); absent: the cluster's default runtime
RUNTIME_ANNOTATION = f"{DOMAIN}/runtime"
# Pod: the real loopback port behind each container port, as JSON {container: {port: real}}
PORTS_ANNOTATION = f"{DOMAIN}/ports"
# Service: "random" or "round-robin" balancing per connection (embedded kube-proxy)
BALANCING_ANNOTATION = f"{DOMAIN}/balancing"
# Service: the seed of its balancer
SEED_ANNOTATION = f"{DOMAIN}/seed"

# labels the client puts on what a notebook makes, so `%lab reset` finds it after a restart
MANAGED_LABEL = f"{DOMAIN}/managed-by"  # value: MANAGED_BY
MANAGED_BY = "labkit"
SESSION_LABEL = f"{DOMAIN}/session"  # value: the notebook session's id
RUN_LABEL = f"{DOMAIN}/run"  # "true" on a pod lab.run() started

# the embedded API server's traffic records (not in discovery)
TRAFFIC_GROUP_VERSION = f"traffic.{DOMAIN}/v1"
RECORDS_PATH = f"/apis/{TRAFFIC_GROUP_VERSION}/namespaces/{{ns}}/services/{{name}}/records"
