"""Outbound HTTP: incident events to org units' webhooks and status callbacks to the hotlines.

The incident event log (gis.work.events) is the only input. A periodic fan-out job (``fanout``)
reads it after a cursor and writes one delivery row per (receiver, event) into the delivery log;
one delivery job per row (``deliver``) POSTs the signed JSON (``signing``) and records each attempt.
Intake and the workflow never wait on a receiver: they only write their event row.
"""
