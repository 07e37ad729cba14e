"""The demo comes alive: a simulator that plays the county's day at a chosen speed (reports with
the demo's rhythm and mix, holders accepting, arriving and handling, centres verifying and closing,
escalations and summonses), every step through the product's own functions."""
