"""Fetching the official Omniglot zips (standard library ``urllib`` only), checked and written atomically.

Each zip is streamed to a temporary ``.part`` file beside its destination while its md5 is computed;
only when the md5 equals the published one and the layout checks out is it renamed into place. A
failed, interrupted or mismatched download leaves nothing behind.

A zip already present is kept when its layout and counts are right, whatever its checksum: copies
rebuilt with another zip tool hold the same images under a different md5.
"""

from __future__ import annotations

import hashlib
import http.client
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path

from lasium import __version__
from lasium.data import paths
from lasium.data.omniglot import OMNIGLOT_FOLDER, OMNIGLOT_LAYOUT, OMNIGLOT_ZIPS, OmniglotLayout, scan_omniglot_zip
from lasium.errors import DataError
from lasium.safe_io import replace_atomically

OMNIGLOT_BASE_URL = "https://github.com/brendenlake/omniglot/raw/master/python"
OMNIGLOT_MD5 = {
    "images_background.zip": "68d2efa1b9178cc56df9314c21c6e718",
    "images_evaluation.zip": "6b91aef0f799c5bb55b94e3f2daec811",
}
CHUNK_BYTES = 1 << 20


@dataclass
class DownloadResult:
    """What happened to one file: ``kept`` (already valid), ``downloaded`` or ``replaced`` (was invalid)."""

    path: Path
    action: str
    md5: str | None = None
    reason: str = ""


def file_md5(path: str | Path) -> str:
    h = hashlib.md5(usedforsecurity=False)
    with open(path, "rb") as f:
        while chunk := f.read(CHUNK_BYTES):
            h.update(chunk)
    return h.hexdigest()


def download_omniglot(
    data_root: str | Path | None = None,
    *,
    base_url: str = OMNIGLOT_BASE_URL,
    expected_md5: dict[str, str] | None = None,
    layout: OmniglotLayout = OMNIGLOT_LAYOUT,
    timeout: float = 60.0,
    progress: bool = True,
) -> list[DownloadResult]:
    """Make ``<data root>/omniglot/images_{background,evaluation}.zip`` present and valid.

    ``expected_md5`` overrides the published md5 per file name (for a mirror holding other builds);
    ``layout`` is what a valid zip holds (the real dataset by default). Raises :class:`DataError` on a
    network error, an md5 mismatch or a wrong layout, leaving no partial file.
    """
    root = paths.data_root(data_root)
    folder = root / OMNIGLOT_FOLDER
    created = [p for p in (root, folder) if not p.exists()]
    try:
        return _download_missing(folder, {**OMNIGLOT_MD5, **(expected_md5 or {})}, base_url, layout, timeout, progress)
    except BaseException:
        for p in reversed(created):  # a failed first download leaves no empty folders either
            try:
                p.rmdir()
            except OSError:
                pass
        raise


def _download_missing(
    folder: Path, md5s: dict[str, str], base_url: str, layout: OmniglotLayout, timeout: float, progress: bool
) -> list[DownloadResult]:
    results = []
    for which, name in enumerate(OMNIGLOT_ZIPS):
        target = folder / name
        reason = ""
        if target.is_file():
            try:
                scan_omniglot_zip(target, which, layout)
                results.append(DownloadResult(target, "kept", reason="present, layout and counts valid"))
                continue
            except DataError as exc:
                reason = str(exc)
        url = f"{base_url.rstrip('/')}/{name}"
        digest = fetch_checked(url, target, md5s[name], which, layout, timeout=timeout, progress=progress)
        results.append(DownloadResult(target, "replaced" if reason else "downloaded", digest, reason))
    return results


def fetch_checked(
    url: str,
    target: Path,
    md5: str,
    which: int,
    layout: OmniglotLayout,
    *,
    timeout: float = 60.0,
    progress: bool = True,
) -> str:
    """Download ``url`` to ``target`` through a temporary file; rename only if md5 and layout are right."""
    from tqdm.auto import tqdm

    fix = "check your network or --base-url and retry"
    digests: list[str] = []

    def fetch_and_check(tmp: Path) -> None:
        h = hashlib.md5(usedforsecurity=False)
        received = 0
        total = None
        request = urllib.request.Request(url, headers={"User-Agent": f"lasium/{__version__}"})
        with open(tmp, "wb") as out:
            try:
                with urllib.request.urlopen(request, timeout=timeout) as response:
                    length = response.headers.get("Content-Length")
                    total = int(length) if length and length.isdigit() else None
                    with tqdm(
                        total=total, desc=target.name, unit="B", unit_scale=True, disable=not progress, leave=False
                    ) as bar:
                        while chunk := response.read(CHUNK_BYTES):
                            out.write(chunk)
                            h.update(chunk)
                            received += len(chunk)
                            bar.update(len(chunk))
            except urllib.error.HTTPError as exc:
                raise DataError(f"downloading {url} failed: HTTP {exc.code} {exc.reason}; {fix}") from None
            except (urllib.error.URLError, http.client.HTTPException, TimeoutError, ConnectionError) as exc:
                why = getattr(exc, "reason", None) or exc
                raise DataError(f"downloading {url} failed ({why}); {fix}") from None
        if total is not None and received != total:
            raise DataError(f"downloading {url} stopped after {received} of {total} bytes; {fix}")
        digest = h.hexdigest()
        if digest != md5.lower():
            raise DataError(
                f"{url} has md5 {digest}, expected {md5}: the download is corrupt or not the official file; "
                "retry, or pass --base-url of a trusted mirror"
            )
        try:
            scan_omniglot_zip(tmp, which, layout)
        except DataError as exc:
            raise DataError(f"{url} matched its md5 but is not a valid Omniglot zip: {exc}") from None
        digests.append(digest)

    try:
        replace_atomically(target, fetch_and_check)
    except OSError as exc:
        raise DataError(
            f"cannot write in {target.parent} ({exc.strerror or exc}); choose a writable --data-root"
        ) from None
    return digests[0]
