"""The ``sonicforge`` command line: the composition root over every package."""
