"""Stage 1, compile: a board file in, a `CompiledBoard` out.

Takes the board's YAML (from disk or a git revision, through
`storyc.files.FileSource`), its template files and its local assets; gives
the compiled jobs (one fal request per scene, with its content key, price and
references resolved to `@ElementN`/`@ImageN`), the compiled stills (one image
request each), what each step takes from another (`graph`: stills and frames,
Merkle keys) and every diagnostic at its `file:line:col`.  Nothing here
touches the network, the lock or a render.

Order inside: source (YAML with positions) -> validate (schema and rules) ->
templates (sandboxed Jinja) -> references -> compiler (requests, keys,
prices; `stills` for the image requests) -> graph (checks, order, keys);
`pipeline` chains them and `cache` keeps the result per input.
"""
