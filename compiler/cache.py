"""Solved layers kept in SQLite, so compiling a network again re-solves nothing.

A result is keyed by everything that decides a solve: the layer's shape
signature, its mapspace constraints (dataflow), the target's content hash, the
mapper and its options, the Joule version and a fingerprint of the code that
solves and scores (``passes/``, ``compiler/cost/``, ``compiler/mapping.py``), so
a changed mapper or cost model never serves an old answer. Only the mapping and the
solver's report are stored; a hit is validated and re-scored by the cost model,
so a cached schedule is byte-identical to a cold one (apart from time fields)
and its numbers are never a stale guess.

Many ``joule compile`` processes may share one file: the journal is WAL (readers
never wait for the writer), every store is one short ``BEGIN IMMEDIATE``
transaction, and a busy database is waited for, not failed on. A process killed
mid-write (even SIGKILL) leaves the last committed state, by SQLite's atomic
commit. A file that is not a database or fails ``PRAGMA quick_check`` is moved
aside (``*.corrupt``) and rebuilt with a warning; a row whose payload fails its
checksum or no longer validates is dropped and solved again.

Location: ``--cache PATH`` (a file, or a directory to hold ``results.sqlite``),
else ``$JOULE_CACHE_DIR``, else ``$XDG_CACHE_HOME/joule``, else ``~/.cache/joule``.
"""

from __future__ import annotations

import dataclasses
import functools
import hashlib
import json
import os
import sqlite3
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from joule.cost.result import CostResult
from joule.errors import JouleError
from joule.ir.loopnest import LoopNest
from joule.mapping import Mapping
from joule.schedule import JOULE_VERSION
from joule.targets.spec import Target

CACHE_ENV = "JOULE_CACHE_DIR"
FILE_NAME = "results.sqlite"
SCHEMA_VERSION = "1"
BUSY_TIMEOUT_S = 60.0  # how long a store waits for another process's transaction
LOCKED_RETRY_S = 0.05  # pause before reopening a cache another process is switching to WAL
_CORRUPT = ("SQLITE_CORRUPT", "SQLITE_NOTADB")

_SCHEMA = (
    "CREATE TABLE IF NOT EXISTS meta (name TEXT PRIMARY KEY, value TEXT NOT NULL)",
    "CREATE TABLE IF NOT EXISTS results (key TEXT PRIMARY KEY, payload TEXT NOT NULL, "
    "checksum TEXT NOT NULL, created REAL NOT NULL)",
)


# joule.passes.mapper.outcome.SolverReport's fields: what a solve reports besides its mapping
REPORT_KEYS = frozenset(
    {
        "mapper",
        "status",
        "objective",
        "bound",
        "gap",
        "time_s",
        "evaluated",
        "energy_bound_pj",
        "proof_work",
        "perfect_status",
        "perfect_objective",
    }
)


@dataclass(frozen=True)
class CachedResult:
    """A stored solve: its mapping, the cost model's fresh score of it, the solver's report."""

    mapping: Mapping
    cost: CostResult
    report: dict[str, Any]


def default_cache_path() -> Path:
    """Where the cache lives when no ``--cache`` is given (see the module docstring)."""
    base = os.environ.get(CACHE_ENV)
    if base:
        return Path(base).expanduser() / FILE_NAME
    xdg = os.environ.get("XDG_CACHE_HOME")
    root = Path(xdg).expanduser() if xdg else Path.home() / ".cache"
    return root / "joule" / FILE_NAME


def target_fingerprint(target: Target) -> str:
    """The target file's content hash; for a Target built in code, a hash of its fields."""
    if target.content_hash:
        return target.content_hash
    anonymous = dataclasses.replace(target, source_file="")
    return "repr:" + hashlib.sha256(repr(anonymous).encode()).hexdigest()


def _solver_sources() -> dict[str, Path]:
    """The folders and files whose code decides a solve, found through the import system
    so that an installed and an editable Joule (whose folders sit apart) agree."""
    import joule.cost
    import joule.mapping
    import joule.passes

    return {
        "passes": Path(joule.passes.__file__).parent,
        "cost": Path(joule.cost.__file__).parent,
        "mapping.py": Path(joule.mapping.__file__),
    }


@functools.cache
def solver_code_fingerprint() -> str:
    """Hash of every source file that decides a solve's result (the version alone does
    not change when an editable install's mapper does)."""
    digest = hashlib.sha256()
    for name, path in _solver_sources().items():
        for source in sorted(path.rglob("*.py")) if path.is_dir() else [path]:
            label = f"{name}/{source.relative_to(path).as_posix()}" if path.is_dir() else name
            digest.update(label.encode())
            digest.update(source.read_bytes())
    return digest.hexdigest()


def result_key(
    nest: LoopNest, target: Target, constraints: object, mapper: str, options: object
) -> str:
    """The cache key of one solve: every input that can change its result."""
    body = {
        "joule": JOULE_VERSION,
        "code": solver_code_fingerprint(),
        "signature": nest.signature(),
        "dims": list(nest.dim_names),  # mappings name dims: same shape, same names
        "constraints": _canonical(constraints),
        "target": target_fingerprint(target),
        "mapper": mapper,
        "options": _canonical(options),
    }
    return hashlib.sha256(json.dumps(body, sort_keys=True).encode()).hexdigest()


def _canonical(value: object) -> object:
    """Plain JSON data for dataclasses, tuples and sets: sets sorted, so the key does not
    depend on the process's string-hash seed (``repr`` of a frozenset does)."""
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        fields = {f.name: _canonical(getattr(value, f.name)) for f in dataclasses.fields(value)}
        return {"type": type(value).__name__, **fields}
    if isinstance(value, (set, frozenset)):
        return sorted((_canonical(v) for v in value), key=repr)
    if isinstance(value, (list, tuple)):
        return [_canonical(v) for v in value]
    if isinstance(value, dict):
        return {str(k): _canonical(v) for k, v in sorted(value.items(), key=lambda kv: repr(kv[0]))}
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    return repr(value)


class ResultCache:
    """One SQLite file of solved layers, shared safely between processes.

    ``required=False`` (the default location) turns an unusable location into a
    warning and a disabled cache; with ``required=True`` (an explicit
    ``--cache``) it is a :class:`JouleError`. Counters ``hits``, ``misses`` and
    ``stored`` and the list ``warnings`` tell the CLI what happened.
    """

    def __init__(self, path: str | Path, *, required: bool = True) -> None:
        path = Path(path).expanduser()
        self.path = path / FILE_NAME if path.is_dir() else path
        self.hits = 0
        self.misses = 0
        self.stored = 0
        self.warnings: list[str] = []
        self._conn: sqlite3.Connection | None = None
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self._conn = self._open()
        except (OSError, sqlite3.Error) as err:
            reason = getattr(err, "strerror", None) or str(err)
            if isinstance(err, (FileExistsError, NotADirectoryError)):
                reason = "a folder on its path is a file"
            if required:
                raise JouleError(
                    f"cannot use the result cache {self.path} ({reason})",
                    where="--cache",
                    hint="give --cache a writable file or directory, or pass --no-cache",
                ) from None
            self._conn = None
            self.warnings.append(f"result cache {self.path} is unusable ({reason}); not caching")

    @property
    def enabled(self) -> bool:
        return self._conn is not None

    def _connect(self) -> sqlite3.Connection:
        """A connection in WAL mode. Two processes opening a new cache at once (a sweep's
        workers) can find it locked while the other switches it to WAL, a wait sqlite's
        busy handler does not cover: retry until the busy timeout."""
        deadline = time.monotonic() + BUSY_TIMEOUT_S
        while True:
            conn = sqlite3.connect(self.path, timeout=BUSY_TIMEOUT_S, isolation_level=None)
            try:
                conn.execute("PRAGMA journal_mode=WAL")
                conn.execute("PRAGMA synchronous=NORMAL")
                return conn
            except sqlite3.OperationalError as err:
                conn.close()
                if "locked" not in str(err) or time.monotonic() > deadline:
                    raise
                time.sleep(LOCKED_RETRY_S)

    def _open(self) -> sqlite3.Connection:
        """Connect, check integrity and schema; move a corrupt file aside and start afresh."""
        try:
            conn = self._connect()
            self._check(conn)
            return conn
        except sqlite3.DatabaseError as err:
            if not _is_corruption(err):
                raise
            self.warnings.append(
                f"result cache {self.path} was corrupt ({err}); moved it to "
                f"{self.path.name}.corrupt and rebuilt an empty cache"
            )
        self._quarantine()
        conn = self._connect()
        self._check(conn)
        return conn

    def _check(self, conn: sqlite3.Connection) -> None:
        row = conn.execute("PRAGMA quick_check").fetchone()
        if row is None or row[0] != "ok":
            err = sqlite3.DatabaseError(f"integrity check failed: {row[0] if row else 'no answer'}")
            err.sqlite_errorname = "SQLITE_CORRUPT"  # type: ignore[attr-defined]
            raise err
        conn.execute("BEGIN IMMEDIATE")
        try:
            for statement in _SCHEMA:
                conn.execute(statement)
            found = conn.execute("SELECT value FROM meta WHERE name = 'schema'").fetchone()
            if found is not None and found[0] != SCHEMA_VERSION:
                conn.execute("DELETE FROM results")  # written by another Joule: start over
            conn.execute(
                "INSERT OR REPLACE INTO meta (name, value) VALUES ('schema', ?)", (SCHEMA_VERSION,)
            )
            conn.execute("COMMIT")
        except BaseException:
            conn.execute("ROLLBACK")
            raise

    def _quarantine(self) -> None:
        """Move the broken file (and its WAL) out of the way; another process may race us."""
        for suffix in ("-wal", "-shm"):
            Path(f"{self.path}{suffix}").unlink(missing_ok=True)
        try:
            os.replace(self.path, f"{self.path}.corrupt")
        except FileNotFoundError:
            pass

    def get(self, key: str, nest: LoopNest, target: Target) -> CachedResult | None:
        """The result stored under ``key``, validated and re-scored on ``nest``; None on a miss.

        A row that fails its checksum or no longer validates on ``nest`` is
        dropped (and counted as a miss), never trusted.
        """
        from joule.cost import evaluate

        if self._conn is None:
            return None
        row = self._query("SELECT payload, checksum FROM results WHERE key = ?", (key,))
        if row is None:
            self.misses += 1
            return None
        payload, checksum = row
        try:
            if _checksum(payload) != checksum:
                raise ValueError("checksum mismatch")
            data = json.loads(payload)
            mapping = Mapping.from_dict(data["mapping"], source="result cache")
            cost = evaluate(nest, target, mapping)  # validates, then scores
            report = dict(data["report"])
            if set(report) != REPORT_KEYS:
                raise ValueError(f"solver report has keys {sorted(report)}")
        except (ValueError, KeyError, TypeError, JouleError) as err:
            self.warnings.append(f"dropped an invalid result cache entry for @{nest.name} ({err})")
            self._write("DELETE FROM results WHERE key = ?", (key,))
            self.misses += 1
            return None
        self.hits += 1
        return CachedResult(mapping, cost, report)

    def put(self, key: str, mapping: Mapping, report: dict[str, Any]) -> None:
        """Store one solved layer (its mapping and solver report) in its own transaction."""
        if self._conn is None:
            return
        payload = json.dumps({"mapping": mapping.to_dict(), "report": report}, sort_keys=True)
        if self._write(
            "INSERT OR REPLACE INTO results (key, payload, checksum, created) VALUES (?, ?, ?, ?)",
            (key, payload, _checksum(payload), time.time()),
        ):
            self.stored += 1

    def __len__(self) -> int:
        row = self._query("SELECT COUNT(*) FROM results", ())
        return int(row[0]) if row else 0

    def close(self) -> None:
        if self._conn is not None:
            self._conn.close()
            self._conn = None

    def __enter__(self) -> ResultCache:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _query(self, sql: str, params: tuple) -> tuple | None:
        try:
            return self._conn.execute(sql, params).fetchone()  # type: ignore[union-attr]
        except sqlite3.Error as err:
            self._fail(err)
            return None

    def _write(self, sql: str, params: tuple) -> bool:
        conn = self._conn
        if conn is None:
            return False
        try:
            conn.execute("BEGIN IMMEDIATE")
            try:
                conn.execute(sql, params)
                conn.execute("COMMIT")
            except BaseException:
                conn.execute("ROLLBACK")
                raise
        except sqlite3.Error as err:
            self._fail(err)
            return False
        return True

    def _fail(self, err: sqlite3.Error) -> None:
        """A cache that breaks mid-run is switched off: the compile goes on without it."""
        self.warnings.append(f"result cache {self.path} failed ({err}); not caching this run")
        self.close()


def _checksum(payload: str) -> str:
    return hashlib.sha256(payload.encode()).hexdigest()


def _is_corruption(err: sqlite3.DatabaseError) -> bool:
    name = getattr(err, "sqlite_errorname", "") or ""
    return name.startswith(_CORRUPT) or "not a database" in str(err) or "malformed" in str(err)


def open_cache(cache: ResultCache | str | Path | bool | None) -> ResultCache | None:
    """``compile_model``'s ``cache`` argument as a cache: True = the default location."""
    if cache is None or cache is False:
        return None
    if isinstance(cache, ResultCache):
        return cache
    if cache is True:
        return ResultCache(default_cache_path(), required=False)
    return ResultCache(cache, required=True)
