"""Stage 4, team: the team store, so that a team pays once for a render.

Takes a content key and the project's store URL (S3, GCS, Azure, a local
directory); gives the decision the ledger acts on before it pays: done
elsewhere (fetch it), claimed or submitted elsewhere (wait, or resume), or
claimed here (render it).  `store` holds the create-only objects (claims,
done records, videos) through obstore; `layer` turns them into decisions.
"""
