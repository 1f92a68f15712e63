"""The backport engine: git work, the resolution ladder, verification and the attempt record."""
