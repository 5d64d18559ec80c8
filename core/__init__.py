"""What every part of ecgmon speaks: the message types and the shared limits (sampling rates, speeds)."""
