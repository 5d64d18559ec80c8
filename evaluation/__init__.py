"""ecgmon.evaluation: evaluation protocols (VFDB episodes, ...)."""
