"""The scheduler's rules, free of the store: taints, node views, filters and failure messages.

``labkit.embedded.scheduler`` is the loop that applies them to pending pods.
"""
