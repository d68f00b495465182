"""bags: see docs/ARCHITECTURE.md."""
