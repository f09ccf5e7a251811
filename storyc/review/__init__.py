"""Stage 7, review: a board at two git revisions, compared scene by scene, with the cost of the change.

Takes a git repository and two revisions (or a revision and the working
tree); `gitfs` reads a revision's files straight from git objects, `changes`
compiles both sides and matches scenes, `formats` writes the result as text,
markdown (pull requests) or JSON (CI).
"""
