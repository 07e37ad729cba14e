"""Boundary layers: importers, validation, publishing and the Jiashan demo data."""
