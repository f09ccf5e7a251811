"""The backends a plan runs on: `fal` (paid, through fal_client, behind the ledger) and `animatic` (free, local).

`base` states what a paid render service answers (accepted, refused, gone, no
answer...), so the ledger decides the same way whatever the service.
"""
