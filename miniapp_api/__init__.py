"""The HTTP layer: decodes, authorises, calls what it is given, and encodes."""
