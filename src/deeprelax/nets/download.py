"""Downloads into a cache, verified by sha256 before they become visible.

A download goes to a temporary file in the destination folder, is checked against its pinned sha256, and only
then is atomically renamed into place (``os.replace``): an interrupted or corrupt download never leaves a file
under the final name, and an existing file is never overwritten. The cache folder is ``$DEEPRELAX_DATA`` if
set, otherwise the platform's user cache directory (``platformdirs.user_cache_dir("deeprelax")``).
"""

from __future__ import annotations

import hashlib
import os
import urllib.request
from collections.abc import Callable, Sequence
from pathlib import Path

from deeprelax.nets.idx import DataFileError

CHUNK = 1 << 20


def cache_dir() -> Path:
    """Where downloaded data sets live: ``$DEEPRELAX_DATA`` or the platform user cache dir."""
    env = os.environ.get("DEEPRELAX_DATA")
    if env:
        return Path(env).expanduser()
    import platformdirs

    return Path(platformdirs.user_cache_dir("deeprelax")) / "data"


def sha256_bytes(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def sha256_file(path: str | Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(CHUNK), b""):
            h.update(block)
    return h.hexdigest()


def check_sha256(path: Path, expected: str) -> None:
    """Raise :class:`DataFileError` when the sha256 of the file ``path`` is not ``expected``."""
    got = sha256_file(path)
    if got != expected:
        raise DataFileError(f"{path} is truncated or corrupt: sha256 {got}, expected {expected}")


def fetch(
    urls: Sequence[str],
    dest: str | Path,
    verify: Callable[[Path], None],
    *,
    progress: bool = True,
    timeout: float = 60.0,
) -> Path:
    """Make sure ``dest`` exists and passes ``verify``; download it from the first working URL if missing.

    ``verify(path)`` raises :class:`DataFileError` for a bad file. An existing ``dest`` that fails
    verification is reported, never replaced (delete it yourself to download again). A download is written
    to a temporary file beside ``dest``, verified, then renamed into place; a failed one is removed.
    """
    dest = Path(dest)
    if dest.exists():
        try:
            verify(dest)
        except DataFileError as exc:
            raise DataFileError(
                f"{exc}. The file was not overwritten: delete {dest} to download it again."
            ) from exc
        return dest
    try:
        dest.parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise DataFileError(
            f"cannot create the download folder {dest.parent} ({exc.strerror}); set "
            "$DEEPRELAX_DATA to a writable folder, or pass --data-dir with the files"
        ) from exc
    if not os.access(dest.parent, os.W_OK):
        raise DataFileError(
            f"the download folder {dest.parent} is not writable; set $DEEPRELAX_DATA to a "
            f"writable folder, or pass --data-dir with the files"
        )
    errors = []
    for url in urls:
        tmp = dest.with_name(f".{dest.name}.part-{os.getpid()}")
        try:
            _download(url, tmp, progress=progress, timeout=timeout)
            verify(tmp)
            os.replace(tmp, dest)
            return dest
        except (OSError, DataFileError) as exc:
            errors.append(f"{url}: {exc}")
        finally:
            if tmp.exists():
                tmp.unlink()
    raise DataFileError(f"could not download {dest.name}:\n  " + "\n  ".join(errors))


def _download(url: str, out: Path, *, progress: bool, timeout: float) -> None:
    from tqdm.auto import tqdm

    req = urllib.request.Request(url, headers={"User-Agent": "deeprelax"})
    with urllib.request.urlopen(req, timeout=timeout) as resp, open(out, "wb") as f:
        total = resp.headers.get("Content-Length")
        total = int(total) if total else None
        done = 0
        with tqdm(
            total=total,
            unit="B",
            unit_scale=True,
            desc=out.name.split(".part-")[0].lstrip("."),
            disable=not progress,
            leave=False,
        ) as bar:
            for block in iter(lambda: resp.read(CHUNK), b""):
                f.write(block)
                done += len(block)
                bar.update(len(block))
    if total is not None and done != total:
        raise DataFileError(f"download of {url} is truncated: {done} of {total} bytes")
