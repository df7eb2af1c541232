"""Built-in releases of Kakugo, written against kakugo_core's public API only."""
