"""The ``sluice`` command: one module per noun."""
