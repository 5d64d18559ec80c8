"""Evaluation protocols: the monitor measured on recorded data (layer above ``monitor``)."""
