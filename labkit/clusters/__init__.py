"""Cluster backends: where labkit's workloads run."""
