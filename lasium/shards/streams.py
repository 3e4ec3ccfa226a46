"""Opening shard URLs as byte streams: plain paths, ``file:``, ``pipe:`` (any command's stdout) and URLs.

``pipe:`` makes any storage work without special support, e.g.
``pipe:aws s3 cp s3://bucket/set/x-000000.tar -`` or ``pipe:curl -s https://host/x-000000.tar``.
A ``pipe:`` source is honoured only when the user typed it (command line, Python call): names read from a
manifest, sidecar or card are plain file names (``lasium.shards.format.SHARD_FILE_RE``), and a run config's
``pipe:`` source must be typed again to resume. The command runs as an argument list (``shlex.split``, no
shell) unless it uses shell syntax (``|``, ``;``, ``&&``, redirections, ``$``), which only a shell can run.
A pipe command that exits non-zero is reported as a :class:`ShardError` with its stderr tail.
``http(s)://`` URLs are streamed with the standard library, other ``scheme://`` URLs (``s3://``,
``gs://``, ...) through fsspec (:mod:`lasium.shards.remote`, which retries transient faults and resumes).
"""

from __future__ import annotations

import shlex
import subprocess
import tempfile
from pathlib import Path
from typing import Protocol

from lasium.errors import ShardError
from lasium.shards.remote import is_remote, open_remote

BUFFER = 1 << 20


class Readable(Protocol):
    """What the shard decoders use of a byte stream: ``read`` (files, pipes, HTTP and fsspec streams, and the
    wrappers that decompress, hash or tee them)."""

    def read(self, n: int = -1, /) -> bytes: ...


class ByteStream(Readable, Protocol):
    """A stream from :func:`open_url`: readable, and closed by :func:`close_stream` when done."""

    def close(self) -> None: ...


def url_to_path(url: str) -> Path | None:
    """The local path of a plain path or ``file:`` URL, else None."""
    if url.startswith("file://"):
        return Path(url[len("file://") :])
    if url.startswith("file:"):
        return Path(url[len("file:") :])
    if ":" in url.split("/", 1)[0] and not Path(url).exists():  # some other scheme
        return None
    return Path(url)


class PipeStream:
    """stdout of a shell command as a readable binary stream; :meth:`close` reports a failed command."""

    def __init__(self, command: str, url: str) -> None:
        self.url = url
        self._stderr = tempfile.TemporaryFile()
        argv = pipe_argv(command, url)
        try:
            self._proc = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=self._stderr, bufsize=BUFFER)
        except OSError as exc:
            self._stderr.close()
            raise ShardError(f"{url}: cannot run {argv[0]!r} ({exc.strerror})") from None
        assert self._proc.stdout is not None
        self._stdout = self._proc.stdout

    def read(self, n: int = -1) -> bytes:
        return self._stdout.read(n)

    def failure(self, timeout: float | None = None) -> str | None:
        """A one-line description if the command failed, else None.

        Waits for the command to end; with ``timeout``, a command still running after it is killed
        and counts as not failed (the caller's own error is then the one to report).
        """
        try:
            rc = self._proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self._proc.kill()
            self._proc.wait()
            return None
        if rc == 0:
            return None
        self._stderr.seek(0)
        tail = self._stderr.read()[-300:].decode("utf-8", "replace").strip().replace("\n", " | ")
        return f"command exited with status {rc}" + (f": {tail}" if tail else "")

    def close(self, *, check: bool = True) -> None:
        """Close; with ``check``, raise :class:`ShardError` if the command failed (read everything first)."""
        problem = None
        try:
            if not check and self._proc.poll() is None:
                self._proc.kill()  # the reader stopped early: the rest of the stream is not wanted
            self._stdout.close()
            if check:
                problem = self.failure()
            self._proc.wait()
        finally:
            self._stderr.close()
        if problem:
            raise ShardError(f"{self.url}: {problem}")


_SHELL_SYNTAX = frozenset("|&;<>()$`")


def pipe_argv(command: str, url: str = "") -> list[str]:
    """The argument list that runs a ``pipe:`` command: its words (``shlex.split``), or ``sh -c command`` when
    the command uses shell syntax (pipes, ``;``, ``&&``, redirections, substitutions, ``~`` or globs)."""
    try:
        lexer = shlex.shlex(command, posix=True, punctuation_chars=True)
        lexer.whitespace_split = True
        words = list(lexer)
    except ValueError as exc:
        raise ShardError(f"{url or 'pipe:' + command}: cannot parse the pipe command ({exc})") from None
    if not words:
        raise ShardError(f"{url or 'pipe:'}: empty pipe command")
    plain = shlex.split(command)
    if (
        any(word and set(word) <= _SHELL_SYNTAX for word in words)
        or "$" in command
        or "`" in command
        or any(word.startswith("~") or any(c in word for c in "*?[") for word in words)  # expansions
    ):
        return ["/bin/sh", "-c", command]
    return plain


def open_url(url: str) -> ByteStream:
    """Open a shard URL for reading (binary, buffered). Raises :class:`ShardError` when it cannot."""
    if url.startswith("pipe:"):
        return PipeStream(url[len("pipe:") :], url)
    path = url_to_path(url)
    if path is not None:
        try:
            return open(path, "rb", buffering=BUFFER)
        except FileNotFoundError:
            raise ShardError(f"shard {url} not found") from None
        except OSError as exc:
            raise ShardError(f"cannot open shard {url}: {exc.strerror}") from None
    if is_remote(url):
        return open_remote(url)
    from webdataset import gopen

    try:
        return gopen.gopen(url, "rb")
    except Exception as exc:  # webdataset raises ValueError/OSError/... for unknown schemes
        raise ShardError(f"cannot open shard {url}: {exc}") from None


def close_stream(stream: ByteStream, *, check: bool) -> None:
    """Close a stream from :func:`open_url`; ``check`` reports a failed pipe command."""
    if isinstance(stream, PipeStream):
        stream.close(check=check)
    else:
        stream.close()


def read_all(url: str) -> bytes:
    """The whole content of a URL (used for HDF5 shards behind ``pipe:``, which need random access)."""
    stream = open_url(url)
    try:
        data = stream.read()
    except BaseException:
        close_stream(stream, check=False)
        raise
    close_stream(stream, check=True)
    return data
