"""The ``usedge`` command line: one module per verb group, ``--help`` everywhere."""
