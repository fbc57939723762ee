"""The client side of the Kubernetes API, shared by every cluster backend (embedded, kind, any context)."""
