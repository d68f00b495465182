"""perception: see docs/ARCHITECTURE.md."""
