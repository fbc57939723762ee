"""The embedded cluster: a local Kubernetes API server, store and (later) controllers.

This package is the lowest layer of labkit: it imports nothing from the rest of
``labkit`` so that it can run as its own daemon process.
"""
