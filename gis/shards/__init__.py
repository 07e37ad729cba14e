"""Sharding by county (issue 20, item 5): shard servers each hold some counties in the normal
gridmap schema; a coordinator database sees them as LIST(county_code) partitioned tables whose
partitions are postgres_fdw foreign tables. One county's work goes straight to its shard
(``routing``); province-wide reads fan out (``fanout``)."""
