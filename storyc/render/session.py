"""A render session: a compiled board, a backend and its plan, held open between planning and doing.

The caller (the CLI, a test, a script) looks at `session.plan`, decides whether
to spend, then calls `session.run(...)`.  For fal the board's lock file is held
(an OS file lock) for the whole session, so two renders of one board can't
interleave.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

from storyc.compile.compiler import CompiledBoard, Job
from storyc.lock.lockfile import LockStore, open_store
from storyc.render.plan import Plan, with_upstreams
from storyc.render.run import Backend, Progress, RenderSummary, execute

if TYPE_CHECKING:
    from storyc.render.backends.base import RenderService
    from storyc.render.backends.fal import FalSettings
    from storyc.render.ledger import LedgerSettings
    from storyc.team.layer import TeamLayer


@dataclass
class Session:
    board: CompiledBoard
    jobs: Sequence[Job]
    backend: Backend
    plan: Plan
    store: LockStore | None = None

    def run(self, *, concurrency: int = 4, progress: Progress | None = None) -> RenderSummary:
        """Carry the plan out. Raises RenderError, before sending anything, when it can't start."""
        self.backend.prepare(self.plan)
        # the lock says which key each scene of the board has now (in its default profile:
        # rendering a draft must not make the lock's `scenes:` flip between profiles)
        if self.store is not None and self.board.is_default_profile:
            self.store.set_scenes({job.scene: job.key for job in self.board.jobs})
        return execute(self.plan, self.backend, concurrency=concurrency, progress=progress)


@contextlib.contextmanager
def fal_session(
    board: CompiledBoard,
    jobs: Sequence[Job],
    settings: FalSettings | None = None,
    ledger: LedgerSettings | None = None,
    team: TeamLayer | None = None,
) -> Iterator[Session]:
    """Raises LockError when the lock file is unreadable or held by another storyc."""
    from storyc.render.backends.fal import FalService

    with ledger_session(board, jobs, FalService(settings), ledger, team) as session:
        yield session


@contextlib.contextmanager
def ledger_session(
    board: CompiledBoard,
    jobs: Sequence[Job],
    service: RenderService,
    settings: LedgerSettings | None = None,
    team: TeamLayer | None = None,
) -> Iterator[Session]:
    """A paid service behind the board's lock file (the ledger), and the team store when there is one."""
    from storyc.render.ledger import Ledger

    with open_store(board.path) as store:
        backend = Ledger(board.path.parent, store, service, settings, team)
        yield Session(board, jobs, backend, backend.plan(board.storyboard, with_upstreams(board, jobs)), store)


def animatic_session(board: CompiledBoard, jobs: Sequence[Job], size: str = "preview") -> Session:
    from storyc.render.backends.animatic import AnimaticBackend

    backend = AnimaticBackend(board.path.parent, board.title, size)
    return Session(board, jobs, backend, backend.plan(board.storyboard, with_upstreams(board, jobs)))
