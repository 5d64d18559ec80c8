"""ecgmon.models."""
