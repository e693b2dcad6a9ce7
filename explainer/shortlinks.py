"""Short links: a long text kept on the server under its hash, so a URL can carry the hash.

A prompt longer than a URL should carry (about 4,000 characters) is written once to
``<cache>/shortlinks/<key>.txt``, where the key is the first 20 hex digits of the SHA-256 of
its UTF-8 bytes. The files live in the cache folder, so a link keeps working after a restart.

Loading checks everything a link or a disk can get wrong: the key's shape, that a text exists
under it, the file's size, and that its bytes still hash to the key (an edited or truncated
file is refused). Writes go to a temporary file that is then renamed into place, so writers
of the same text at the same time (threads or processes) never leave half a file. The store
is bounded: past ``max_files`` texts or ``max_bytes`` the least recently used go.
"""
from __future__ import annotations

import hashlib
import os
import re
import threading
import time
import uuid
from pathlib import Path

from explainer.paths import cache_dir

KEY_CHARS = 20                      # 80 bits of SHA-256: collisions are out of reach for a classroom
MAX_TEXT_CHARS = 200_000            # as long as the app accepts a prompt
MAX_TEXT_BYTES = 4 * MAX_TEXT_CHARS  # UTF-8 needs at most 4 bytes per character
_KEY = re.compile(rf"[0-9a-f]{{{KEY_CHARS}}}")
_SUFFIX = ".txt"
_STALE_TMP_SECONDS = 3600


class ShortLinkError(ValueError):
    """A short link that cannot give its text back; ``reason`` names what went wrong."""

    reason = "error"


class BadKey(ShortLinkError):
    reason = "malformed"


class UnknownKey(ShortLinkError):
    reason = "unknown"


class DamagedText(ShortLinkError):
    reason = "damaged"


class TextTooLarge(ShortLinkError):
    reason = "too_large"


def key_of(text: str) -> str:
    """The short-link key of ``text`` (20 lowercase hex digits)."""
    return hashlib.sha256(_encode(text)).hexdigest()[:KEY_CHARS]


def _encode(text: str) -> bytes:
    if not isinstance(text, str):
        raise TypeError(f"a short link stores text, not {type(text).__name__}")
    return text.encode("utf-8", errors="surrogatepass")


class ShortLinkStore:
    """Texts on disk by key, bounded in count and bytes (least recently used go first)."""

    def __init__(self, root: Path | str, max_files: int = 5_000, max_bytes: int = 64 * 2**20) -> None:
        self.root = Path(root)
        self.max_files = max_files
        self.max_bytes = max_bytes
        self._lock = threading.Lock()

    def _path(self, key: str) -> Path:
        return self.root / (key + _SUFFIX)

    def save(self, text: str) -> str:
        """Store ``text`` (if it is not stored yet) and return its key.

        Raises :class:`TextTooLarge` past ``MAX_TEXT_CHARS`` and ``OSError`` when the disk refuses.
        """
        data = _encode(text)
        if len(text) > MAX_TEXT_CHARS or len(data) > MAX_TEXT_BYTES:
            raise TextTooLarge(f"the text has {len(text):,} characters; at most {MAX_TEXT_CHARS:,} can be stored")
        key = hashlib.sha256(data).hexdigest()[:KEY_CHARS]
        path = self._path(key)
        try:
            if path.stat().st_size == len(data) and path.read_bytes() == data:   # already there, intact
                return key
        except (FileNotFoundError, IsADirectoryError):
            pass
        self.root.mkdir(parents=True, exist_ok=True)
        tmp = self.root / f".{key}.{os.getpid()}.{uuid.uuid4().hex}.tmp"
        try:
            with open(tmp, "wb") as fh:
                fh.write(data)
                fh.flush()
                os.fsync(fh.fileno())
            os.replace(tmp, path)                    # atomic: readers see all of it or none
        finally:
            tmp.unlink(missing_ok=True)
        self._prune(keep=key)
        return key

    def load(self, key: str) -> str:
        """The text stored under ``key``.

        Raises :class:`BadKey` (not a key), :class:`UnknownKey` (nothing stored under it),
        :class:`TextTooLarge` (the file is larger than any text we store) or
        :class:`DamagedText` (the bytes no longer match the key, or are not UTF-8).
        """
        if not isinstance(key, str) or not _KEY.fullmatch(key.strip().lower()):
            raise BadKey(f"{str(key)[:40]!r} is not a short-link key ({KEY_CHARS} hex digits)")
        key = key.strip().lower()
        path = self._path(key)
        try:
            size = path.stat().st_size
            if size > MAX_TEXT_BYTES:
                raise TextTooLarge(f"the file for {key} holds {size:,} bytes, more than any stored text")
            with open(path, "rb") as fh:
                data = fh.read(MAX_TEXT_BYTES + 1)
        except (FileNotFoundError, IsADirectoryError, NotADirectoryError):
            raise UnknownKey(f"no text is stored under {key}") from None
        if hashlib.sha256(data).hexdigest()[:KEY_CHARS] != key:
            raise DamagedText(f"the text stored under {key} was changed or is incomplete")
        try:
            text = data.decode("utf-8", errors="surrogatepass")
        except UnicodeDecodeError:
            raise DamagedText(f"the text stored under {key} is not UTF-8") from None
        try:
            os.utime(path)                           # recently used: pruned last
        except OSError:
            pass
        return text

    def _prune(self, keep: str) -> None:
        """Remove the least recently used texts beyond the limits, and old temporary files."""
        with self._lock:
            entries = []
            for entry in os.scandir(self.root):
                try:
                    info = entry.stat()
                except FileNotFoundError:            # another process removed it meanwhile
                    continue
                if entry.name.endswith(".tmp"):
                    if _age(info.st_mtime) > _STALE_TMP_SECONDS:
                        _remove(entry.path)
                elif entry.name.endswith(_SUFFIX) and entry.name != keep + _SUFFIX:
                    entries.append((info.st_mtime, info.st_size, entry.path))
            keep_size = self._path(keep).stat().st_size if self._path(keep).exists() else 0
            entries.sort()                           # oldest first
            count, total = len(entries) + 1, sum(size for _, size, _ in entries) + keep_size
            for _, size, path in entries:
                if count <= self.max_files and total <= self.max_bytes:
                    break
                _remove(path)
                count, total = count - 1, total - size


def _age(mtime: float) -> float:
    return time.time() - mtime


def _remove(path: str) -> None:
    try:
        os.unlink(path)
    except FileNotFoundError:
        pass


_default: ShortLinkStore | None = None
_default_lock = threading.Lock()


def default_store() -> ShortLinkStore:
    """The store in the cache folder (``$LLM_EXPLAINER_CACHE/shortlinks``), made on first use."""
    global _default
    root = cache_dir("shortlinks")
    with _default_lock:
        if _default is None or _default.root != root:
            _default = ShortLinkStore(root)
        return _default


def save(text: str) -> str:
    """Store ``text`` in the default store; return its key."""
    return default_store().save(text)


def load(key: str) -> str:
    """The text under ``key`` in the default store (raises a :class:`ShortLinkError`)."""
    return default_store().load(key)
