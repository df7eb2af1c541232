"""Built-in plugins of Kakugo, written against kakugo_core's public API only."""
