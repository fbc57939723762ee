"""Control loops: each watches the store and moves the cluster towards what the objects ask for."""
