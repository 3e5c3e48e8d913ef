"""The `sisnbms` command line: one module per subcommand."""
