"""Adapters for the 12345 government hotline and the 110 police service desk.

Inbound (``inbound``): a hotline posts its ticket in its own field names and with its own ids;
the ticket becomes an incident of source ``hotline_<code>`` whose ``external_id`` is the ticket
number, so a resend is idempotent by intake's unique ``(source, external_id)``. The hotline's
category codes are translated by an editable table (``config``).

Outbound: the ticket's status changes (accepted, dispatched, handled, closed with the result,
rejected) go back to the hotline's callback URL as signed callbacks through the same delivery
log, jobs and retries as the webhooks (gis.outbound.fanout).
"""
