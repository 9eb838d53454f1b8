"""One module per CLI command. Import heavy libraries inside the command body."""
