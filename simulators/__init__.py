"""ecgmon.simulators."""
