"""Prefect flows: thin, calling the handover domain (``orosflow.handover``)."""

#: Printed once a runner serves prefect.yaml's deployments (tests and scripts wait for it; here
#: so that they need not import Prefect to know it).
SERVING = "Flöden som körs härifrån"
