"""Pipelines: one function per job kind, each writing one atomic job folder."""
