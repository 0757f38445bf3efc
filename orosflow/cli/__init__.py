"""Entry points: the orosflow command and serve."""
