"""The ``aim-ray`` command line: a module per command group (``main`` registers them)."""
