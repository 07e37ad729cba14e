"""Photos and files kept as evidence (attachments): the store, the media checks, the owners."""
