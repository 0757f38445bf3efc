"""Orosflow web portal (FastAPI + Jinja2, server-rendered, no JavaScript needed)."""
