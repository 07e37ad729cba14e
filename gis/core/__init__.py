"""The store and the vocabulary: settings, engine and sessions, the local cluster, models, statuses,
layers, roles, time.
"""
