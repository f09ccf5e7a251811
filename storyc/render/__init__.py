"""Stage 5, render: compiled jobs in, videos and lock entries out.

`plan` prices what a run would do against the lock; `run` carries a plan out,
scenes in parallel and safely interruptible; the `ledger` stands in front of
every paid backend (the lock first, then the team store, then fal: intent is
written before a submit, unknown is never re-sent); `session` picks and wires
the backend (`backends/`: fal through fal_client, or the free animatic);
`download` fetches results; `inventory` says what is rendered (status, pull,
gc).
"""
