"""Container sandbox of the embedded cluster: isolation of pods and RUN steps."""
