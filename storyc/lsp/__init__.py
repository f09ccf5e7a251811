"""Top: `storyc lsp`, a Language Server Protocol server for boards (and the template files they use).

Takes an editor's open buffers (unsaved edits included) and gives what `storyc check` says about
them, as the editor's diagnostics, plus completion, hover, go to definition, rename, outline and
each scene's price inline.  It compiles through the same pipeline as every command, reading the
buffers through a `FileSource` (`overlay`); only `server` imports pygls.
"""
