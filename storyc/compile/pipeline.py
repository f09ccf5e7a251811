"""The compiler pipeline: load -> validate -> template -> resolve -> compile.

Each stage is a function from one typed value to the next, adding diagnostics
as it goes; this module only chains them.
"""

from __future__ import annotations

from pathlib import Path

from storyc.compile import endpoints
from storyc.compile.assets import Assets, WholeFiles
from storyc.compile.compiler import CompiledBoard, CompileResult, JobBuilder, StillJob
from storyc.compile.graph import Graph, assign_keys, scene_needs
from storyc.compile.references import Resolver
from storyc.compile.source import SourceDoc, display_path, load
from storyc.compile.stills import StillBuilder
from storyc.compile.templates import render_scenes, render_stills
from storyc.compile.validate import validate
from storyc.diagnostics import Diagnostics
from storyc.files import LOCAL, FileSource


def compile_file(
    path: Path,
    display: str | None = None,
    *,
    use_cache: bool = True,
    files: FileSource | None = None,
    profile: str | None = None,
) -> CompileResult:
    """Compile a storyboard file as profile `profile` (None: the board's default); never raises for bad input.

    `files`: where the board and everything it names are read (default: the disk, with the
    compile cache; `storyc diff` passes a git revision's tree, never cached).
    Raises UnknownProfile when the board declares no profile `profile` (a usage error).
    """
    display = display if display is not None else display_path(path)
    if files is not None:
        return _compile(path, display, profile, files)
    if not use_cache:
        return _compile(path, display, profile)
    from storyc.compile import cache

    cached = cache.lookup(path, display, profile)
    if cached is not None:
        return cached
    result = _compile(path, display, profile, whole=cache.whole_files(path))
    cache.store(path, display, result, profile)
    return result


def _compile(
    path: Path, display: str, profile: str | None, files: FileSource = LOCAL, whole: WholeFiles | None = None
) -> CompileResult:
    diags = Diagnostics(display)
    doc = load(path, diags, files)
    if doc is None:
        return CompileResult(None, diags.sorted())
    return compile_doc(doc, diags, profile, whole)


def compile_doc(
    doc: SourceDoc, diags: Diagnostics, profile: str | None = None, whole: WholeFiles | None = None
) -> CompileResult:
    """Compile a loaded board as profile `profile` (None: its default), adding to `diags` (what loading it said).

    For a caller that compiles one parse in several profiles and keeps the parse (the language
    server: positions for hover, rename, completion).  Raises UnknownProfile like `compile_file`.
    """
    display = diags.path
    board = validate(doc, diags, profile)
    if board is None:
        return CompileResult(None, diags.sorted())
    rendered = render_scenes(board, diags)
    still_prompts = render_stills(board, diags)
    assets = Assets(board, diags, whole)
    assets.check_all()
    resolver = Resolver(board, diags)
    graph = Graph(board, diags)
    graph.check_slots()
    builder = JobBuilder(board, assets, diags)
    jobs = []
    for scene in rendered:
        endpoint = endpoints.get(scene.scene.endpoint)
        assert endpoint is not None  # validate() refused unknown endpoints
        resolved = resolver.scene(scene, endpoint)
        if resolved is not None:
            graph.add(("scene", scene.scene.id), scene_needs(scene.scene, (*resolved.elements, *resolved.images)))
        job = builder.build(resolved, endpoint) if resolved is not None else None
        if job is not None:
            jobs.append(job)
    still_builder = StillBuilder(board, assets, resolver, graph, diags)
    stills: list[StillJob] = []
    for name, prompt in still_prompts.items():
        still = still_builder.build(board.stills[name], prompt)
        if still is not None:
            stills.append(still)
    if not diags.has_errors:  # with errors, a name may look unused only because its scene failed
        resolver.warn_unused()
        graph.warn_unused_stills()
    if not graph.check_cycles() or diags.has_errors:
        return CompileResult(None, diags.sorted(), board.profiles)
    keyed_jobs, keyed_stills = assign_keys(jobs, stills)
    compiled = CompiledBoard(
        storyboard=display,
        path=board.doc.path,
        title=board.title,
        jobs=keyed_jobs,
        stills=keyed_stills,
        profile=board.profile,
        profiles=board.profiles,
        default_profile=board.default_profile,
        template_files=tuple(str(t.file) for t in board.templates.values() if t.file is not None),
        asset_files=tuple(sorted(assets.files)),
    )
    return CompileResult(compiled, diags.sorted(), board.profiles)
