"""Labelled data on disk: class maps, the readers of each annotation format, and dataset
descriptions (a root, a format, a class map and a fixed split)."""
