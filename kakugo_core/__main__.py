"""``python -m kakugo_core`` runs the CLI."""

from kakugo_core.cli import main

main()
