"""Work done apart from requests: the job queue (jobs), the job bodies (tasks), the worker (worker)."""
