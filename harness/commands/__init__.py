"""The ``gmgbench`` subcommands, one module per group. Each has ``register(sub)``, which adds its
parsers, each with ``set_defaults(func=handler)``, to the command's subparsers;
:mod:`gmgbench.harness.cli` wires them, and is the one place a UserError becomes a message."""
