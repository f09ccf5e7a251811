"""A git revision's files, read from git objects: no checkout, no temporary work tree.

`GitRepo` keeps two long-lived `git cat-file` processes (`--batch` for
contents, `--batch-check` for sizes) and reads trees lazily: only the
directories on the paths a board names are ever read.  `GitTree` is one
commit's files as a `storyc.files.FileSource`, at the same absolute paths as
the work tree, so diagnostics, asset paths and keys read as they do on disk.

Symlinks are resolved inside the commit's tree the way the disk would
resolve them; one that leads outside the repository resolves outside the
project root, and the asset or template is refused as usual.  Nothing
outside the repository is ever read.

A file kept in Git LFS is a small pointer in git: its sha256 (the content
key's hash) is in the pointer, and its bytes are read from the clone's LFS
store (`.git/lfs/objects/`) when `git lfs` has fetched them.
"""

from __future__ import annotations

import errno
import hashlib
import io
import os
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import IO, BinaryIO

from storyc.diagnostics import StorycError
from storyc.files import FileInfo

MODE_TREE, MODE_LINK, MODE_SUBMODULE = "40000", "120000", "160000"
MAX_SYMLINK_HOPS = 40
CHUNK = 1 << 20
LFS_POINTER = b"version https://git-lfs.github.com/spec/v1\n"
MAX_LFS_POINTER = 1024


class GitError(StorycError):
    """git is missing, the folder is not in a repository, or a revision is unknown."""


@dataclass(frozen=True, slots=True)
class Entry:
    mode: str  # as git writes it in trees: 40000, 100644, 100755, 120000, 160000
    oid: str

    @property
    def is_tree(self) -> bool:
        return self.mode == MODE_TREE

    @property
    def is_link(self) -> bool:
        return self.mode == MODE_LINK

    @property
    def is_blob(self) -> bool:
        return self.mode not in (MODE_TREE, MODE_SUBMODULE)


@dataclass(frozen=True, slots=True)
class LfsObject:
    """A file git keeps as a Git LFS pointer."""

    sha256: str  # "sha256:<hex>", from the pointer
    size: int
    local: Path  # where git-lfs keeps the bytes in this clone (may be missing)


def _git(cwd: Path, *args: str) -> str:
    try:
        done = subprocess.run(["git", *args], cwd=cwd, capture_output=True, text=True, check=False)
    except FileNotFoundError as exc:
        raise GitError("git is not installed (storyc diff reads revisions with it)") from exc
    except OSError as exc:
        raise GitError(f"cannot run git in {cwd}: {exc.strerror or exc}") from exc
    if done.returncode != 0:
        raise GitError(done.stderr.strip() or f"git {args[0]} failed")
    return done.stdout.strip()


def nearest_folder(path: Path) -> Path:
    """The closest existing folder at or above `path` (a board may not exist in the work tree)."""
    for folder in (path, *path.parents):
        if folder.is_dir():
            return folder
    return Path("/")


class _Batch:
    """One `git cat-file --batch[-check]` process, started on first use."""

    def __init__(self, toplevel: Path, option: str) -> None:
        self.toplevel = toplevel
        self.option = option
        self._proc: subprocess.Popen[bytes] | None = None

    def _pipes(self) -> tuple[IO[bytes], IO[bytes]]:
        if self._proc is None:
            self._proc = subprocess.Popen(
                ["git", "cat-file", self.option],
                cwd=self.toplevel,
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                stderr=subprocess.DEVNULL,
            )
        assert self._proc.stdin is not None and self._proc.stdout is not None
        return self._proc.stdin, self._proc.stdout

    def ask(self, name: str) -> tuple[str, str, int, IO[bytes]] | None:
        """(oid, type, size, stdout) for an object; None when git has no such object.

        With `--batch`, the caller reads `size` bytes and a LF from stdout before asking again.
        """
        stdin, stdout = self._pipes()
        stdin.write(name.encode() + b"\n")
        stdin.flush()
        header = stdout.readline().decode().split()
        if len(header) != 3:  # "<name> missing" / "ambiguous"
            return None
        return header[0], header[1], int(header[2]), stdout

    def close(self) -> None:
        if self._proc is not None:
            assert self._proc.stdin is not None and self._proc.stdout is not None
            self._proc.stdin.close()
            self._proc.stdout.close()
            self._proc.wait()
            self._proc = None


class GitRepo:
    """The repository around a folder; a context manager (it runs two git processes)."""

    def __init__(self, toplevel: Path) -> None:
        self.toplevel = toplevel
        self._contents = _Batch(toplevel, "--batch")
        self._info = _Batch(toplevel, "--batch-check")
        self._trees: dict[str, dict[str, Entry]] = {}
        self._digests: dict[str, tuple[str, bytes]] = {}  # blob -> (sha256, first bytes)
        self._sizes: dict[str, int] = {}
        self._pointers: dict[str, LfsObject | None] = {}
        self._lfs_store: Path | None = None

    @classmethod
    def around(cls, path: Path) -> GitRepo:
        folder = nearest_folder(path)
        try:
            toplevel = _git(folder, "rev-parse", "--show-toplevel")
        except GitError as exc:
            if "not a git repository" not in str(exc):
                raise  # git missing, a safe.directory refusal, ...: git's own words say it best
            raise GitError(f"{folder} is not in a git repository") from exc
        return cls(Path(toplevel).resolve())

    def __enter__(self) -> GitRepo:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        self._contents.close()
        self._info.close()

    def commit(self, rev: str) -> str:
        """The full commit id of a revision (`HEAD`, `main`, `origin/main~2`, a sha)."""
        if rev.startswith("-"):
            raise GitError(f"'{rev}' is not a revision")
        try:
            return _git(self.toplevel, "rev-parse", "--verify", "--quiet", "--end-of-options", f"{rev}^{{commit}}")
        except GitError:
            raise GitError(f"unknown revision '{rev}' in {self.toplevel}") from None

    def tree(self, commit: str) -> GitTree:
        oid, data = self._object(f"{commit}^{{tree}}", "tree")
        self._trees[oid] = _parse_tree(data, len(oid) // 2)
        return GitTree(self, Entry(MODE_TREE, oid), commit)

    # --- objects ---------------------------------------------------------------------

    def _object(self, name: str, kind: str) -> tuple[str, bytes]:
        """(oid, contents) of a tree."""
        found = self._contents.ask(name)
        if found is None:
            raise FileNotFoundError(errno.ENOENT, "no such object in the repository", name)
        oid, typ, size, stdout = found
        data = stdout.read(size)
        stdout.read(1)  # the LF after the contents
        if typ != kind:
            raise OSError(errno.EINVAL, f"{name} is a {typ}, not a {kind}")
        return oid, data

    def entries(self, tree_oid: str) -> dict[str, Entry]:
        """A tree's entries by name, parsed from git's binary tree format (cached)."""
        if tree_oid not in self._trees:
            _oid, data = self._object(tree_oid, "tree")
            self._trees[tree_oid] = _parse_tree(data, len(tree_oid) // 2)
        return self._trees[tree_oid]

    def size(self, oid: str) -> int:
        if oid not in self._sizes:
            found = self._info.ask(oid)
            if found is None:
                raise FileNotFoundError(errno.ENOENT, "no such object in the repository", oid)
            self._sizes[oid] = found[2]
        return self._sizes[oid]

    def blob(self, oid: str) -> bytes:
        data = b"".join(self._chunks(oid))
        if oid not in self._digests:  # read for Pillow: the hash then costs no second read
            self._digests[oid] = ("sha256:" + hashlib.sha256(data).hexdigest(), data[:64])
        return data

    def _chunks(self, oid: str) -> Iterator[bytes]:
        """A blob's contents, streamed (videos may be 200 MB); always read to the end."""
        found = self._contents.ask(oid)
        if found is None:
            raise FileNotFoundError(errno.ENOENT, "no such object in the repository", oid)
        _oid, _typ, size, stdout = found
        left = size
        while left:
            chunk = stdout.read(min(CHUNK, left))
            if not chunk:
                raise OSError(errno.EIO, "git cat-file ended early")
            left -= len(chunk)
            yield chunk
        stdout.read(1)

    def scan(self, oid: str) -> tuple[str, bytes]:
        """('sha256:<hex>', first 64 bytes) of a blob, read once per blob for every revision."""
        if oid not in self._digests:
            digest = hashlib.sha256()
            head = b""
            for chunk in self._chunks(oid):
                if len(head) < 64:
                    head += chunk[: 64 - len(head)]
                digest.update(chunk)
            self._digests[oid] = ("sha256:" + digest.hexdigest(), head)
        return self._digests[oid]

    def lfs(self, oid: str) -> LfsObject | None:
        """The LFS object a blob points to, when the blob is a Git LFS pointer."""
        if oid not in self._pointers:
            data = self.blob(oid) if self.size(oid) <= MAX_LFS_POINTER else b""
            self._pointers[oid] = self._parse_pointer(data) if data.startswith(LFS_POINTER) else None
        return self._pointers[oid]

    def _parse_pointer(self, data: bytes) -> LfsObject | None:
        fields = dict(line.split(" ", 1) for line in data.decode("utf-8", "replace").splitlines() if " " in line)
        digest, size = fields.get("oid", ""), fields.get("size", "")
        hex_digest = digest.removeprefix("sha256:")
        if not digest.startswith("sha256:") or len(hex_digest) != 64 or not size.isdigit():
            return None
        if self._lfs_store is None:
            common = Path(_git(self.toplevel, "rev-parse", "--git-common-dir"))
            self._lfs_store = (self.toplevel / common).resolve() / "lfs" / "objects"
        local = self._lfs_store / hex_digest[:2] / hex_digest[2:4] / hex_digest
        return LfsObject(digest, int(size), local)


def _parse_tree(data: bytes, hash_len: int) -> dict[str, Entry]:
    entries: dict[str, Entry] = {}
    i = 0
    while i < len(data):
        space = data.index(b" ", i)
        nul = data.index(b"\0", space)
        mode = data[i:space].decode()
        name = os.fsdecode(data[space + 1 : nul])
        oid = data[nul + 1 : nul + 1 + hash_len].hex()
        entries[name] = Entry(mode, oid)
        i = nul + 1 + hash_len
    return entries


class GitTree:
    """One commit's files, at the work tree's absolute paths (a `FileSource`)."""

    def __init__(self, repo: GitRepo, root: Entry, commit: str) -> None:
        self.repo = repo
        self.root = root
        self.commit = commit
        self.toplevel = repo.toplevel
        self._found: dict[Path, Entry | None] = {}

    # --- looking paths up ------------------------------------------------------------

    def entry(self, path: Path) -> Entry | None:
        """The tree entry at an absolute path, without following its last component; None if absent."""
        if path in self._found:
            return self._found[path]
        if path == self.toplevel:
            found: Entry | None = self.root
        elif not path.is_relative_to(self.toplevel):
            found = None  # outside the repository: nothing is read from there
        else:
            parent = self.entry(path.parent)
            found = None
            if parent is not None and parent.is_tree:
                found = self.repo.entries(parent.oid).get(path.name)
        self._found[path] = found
        return found

    def resolve(self, path: Path) -> Path:
        """Like `Path.resolve()`, with the commit's symlinks; a symlink loop is left unresolved."""
        pending = list(path.parts[1:]) if path.is_absolute() else [*Path.cwd().parts[1:], *path.parts]
        resolved = Path("/")
        hops = 0
        while pending:
            part = pending.pop(0)
            if part in ("", "."):
                continue
            if part == "..":
                resolved = resolved.parent
                continue
            candidate = resolved / part
            entry = self.entry(candidate)
            if entry is None or not entry.is_link:
                resolved = candidate
                continue
            hops += 1
            if hops > MAX_SYMLINK_HOPS:
                return candidate.joinpath(*pending)
            target = Path(os.fsdecode(self.repo.blob(entry.oid)))
            if target.is_absolute():
                resolved = Path("/")
            pending = [*target.parts[1 if target.is_absolute() else 0 :], *pending]
        return resolved

    def _file(self, path: Path) -> Entry:
        """The entry a path names, following symlinks; raises like the disk would."""
        entry = self.entry(self.resolve(path))
        if entry is None:
            raise FileNotFoundError(errno.ENOENT, os.strerror(errno.ENOENT), str(path))
        if entry.is_link:
            raise OSError(errno.ELOOP, os.strerror(errno.ELOOP), str(path))
        return entry

    def _blob(self, path: Path) -> Entry:
        entry = self._file(path)
        if not entry.is_blob:
            raise IsADirectoryError(errno.EISDIR, os.strerror(errno.EISDIR), str(path))
        return entry

    # --- FileSource ----------------------------------------------------------------

    def _lfs_file(self, path: Path, entry: Entry) -> Path | None:
        """For a Git LFS pointer, the file holding its bytes (an error if this clone lacks it)."""
        pointer = self.repo.lfs(entry.oid)
        if pointer is None:
            return None
        if not pointer.local.is_file():
            raise OSError(errno.ENODATA, "kept in Git LFS, and not fetched in this clone (run `git lfs fetch`)")
        return pointer.local

    def stat(self, path: Path) -> FileInfo:
        entry = self._file(path)
        if not entry.is_blob:
            return FileInfo(0, 0, is_file=False, kind="a folder")
        lfs = self._lfs_file(path, entry)
        return FileInfo(lfs.stat().st_size if lfs else self.repo.size(entry.oid), 0, is_file=True)

    def read_bytes(self, path: Path) -> bytes:
        entry = self._blob(path)
        lfs = self._lfs_file(path, entry)
        return lfs.read_bytes() if lfs else self.repo.blob(entry.oid)

    def open(self, path: Path) -> BinaryIO:
        entry = self._blob(path)
        lfs = self._lfs_file(path, entry)
        return lfs.open("rb") if lfs else io.BytesIO(self.repo.blob(entry.oid))

    def head(self, path: Path, size: int) -> bytes:
        entry = self._blob(path)
        lfs = self._lfs_file(path, entry)
        if lfs is not None:
            with lfs.open("rb") as f:
                return f.read(size)
        if size <= 64:
            return self.repo.scan(entry.oid)[1][:size]
        return self.repo.blob(entry.oid)[:size]

    def sha256(self, path: Path) -> str:
        entry = self._blob(path)
        pointer = self.repo.lfs(entry.oid)
        return pointer.sha256 if pointer is not None else self.repo.scan(entry.oid)[0]

    def project_root(self, start: Path) -> Path:
        return self.toplevel if start.is_relative_to(self.toplevel) else start

    def exists(self, path: Path) -> bool:
        try:
            self._file(path)
        except OSError:
            return False
        return True
