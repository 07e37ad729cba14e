"""Where things are: CRS conversion, areas and generations, assignment (SQL twin and in-process),
reassignment, verify, lookups, geocoding, unit details.
"""
