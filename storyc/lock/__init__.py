"""Stage 3, lock: `board.lock`, the record of what was asked of fal and paid.

Takes a board's path; gives its lock (`lockfile`: entries by content key, in
the states intent -> submitted -> done / failed / lost / unknown, read
strictly and written atomically under a file lock) and the merge of two
locks after a git conflict (`merge`), which never drops a paid request.
Nothing here talks to fal or the team store.
"""
