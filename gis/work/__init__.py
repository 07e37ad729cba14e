"""Work done apart from requests: the job queue (jobs), the job bodies (tasks), the worker (worker),
and the live push of incident events (events: the log read as a stream; eventhub: its fan-out)."""
