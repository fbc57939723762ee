# The two commands of the README. Each sets up what it needs on a fresh machine.
.PHONY: lab test help

help:
	@echo "make lab    set up .venv, start the embedded cluster and JupyterLab on the tutorials"
	@echo "make test   set up .venv with the test tools and run every test (CI runs this)"

lab:
	bash .ci/lab

test:
	bash .ci/test
