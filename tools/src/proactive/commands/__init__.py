"""Typer commands of the `proactive` CLI, one module per area; `proactive.cli` wires them."""
