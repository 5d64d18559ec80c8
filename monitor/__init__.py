"""ecgmon.monitor."""
