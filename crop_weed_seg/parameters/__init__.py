"""parameters: see docs/ARCHITECTURE.md."""
