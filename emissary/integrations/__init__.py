"""Integrations with distributed data pipelines; each imports its framework lazily."""
