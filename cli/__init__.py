"""ecgmon.cli: the ``ecgmon`` command, the top layer that composes the monitor, fitting and evaluation."""
