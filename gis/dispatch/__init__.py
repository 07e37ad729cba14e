"""Dispatch: who holds an incident (assignments), routing rules, queues and their deadlines."""
