"""ecgmon.segmentation."""
