"""Background work and live push: the event stream (events, eventhub)."""
