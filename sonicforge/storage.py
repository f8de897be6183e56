"""Object storage for audio files beside the Delta tables.

One interface over pyarrow's filesystem layer, so the same code writes to a
local directory or to any S3 API. Rows in the lakehouse hold the URI and the
sha256 of the bytes.
"""

from __future__ import annotations

import hashlib
import os
import uuid
from collections.abc import Mapping
from urllib.parse import urlparse

import pyarrow.fs as pafs

from sonicforge.errors import StorageError


def sha256_hex(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _s3_filesystem(options: Mapping[str, str]) -> pafs.FileSystem:
    # The same keys deltalake's object store reads, so one options dict
    # configures tables and audio alike.
    endpoint = options.get("AWS_ENDPOINT_URL") or options.get("endpoint_url")
    scheme = None
    if endpoint:
        parsed = urlparse(endpoint)
        scheme = parsed.scheme or None
        endpoint = parsed.netloc or parsed.path
    kwargs: dict[str, object] = {}
    for key, arg in (
        ("AWS_ACCESS_KEY_ID", "access_key"),
        ("AWS_SECRET_ACCESS_KEY", "secret_key"),
        ("AWS_SESSION_TOKEN", "session_token"),
        ("AWS_REGION", "region"),
    ):
        if options.get(key):
            kwargs[arg] = options[key]
    if endpoint:
        kwargs["endpoint_override"] = endpoint
    if scheme:
        kwargs["scheme"] = scheme
    return pafs.S3FileSystem(**kwargs)  # type: ignore[arg-type]


class ObjectStore:
    """Bytes in, bytes out, addressed by URI under one root."""

    def __init__(self, root_uri: str, *, storage_options: Mapping[str, str] | None = None):
        self.root_uri = root_uri.rstrip("/")
        parsed = urlparse(self.root_uri)
        if parsed.scheme in ("s3", "s3a"):
            self._fs: pafs.FileSystem = _s3_filesystem(storage_options or {})
            self._root_path = f"{parsed.netloc}{parsed.path}"
            self._local = False
        elif parsed.scheme in ("", "file"):
            path = parsed.path if parsed.scheme == "file" else self.root_uri
            self._root_path = os.path.abspath(path)
            self.root_uri = self._root_path
            self._fs = pafs.LocalFileSystem()
            self._local = True
        else:
            raise StorageError(
                f"unsupported storage scheme {parsed.scheme!r} in {root_uri!r}; "
                "allowed: a local path, file://, s3://"
            )

    def uri_for(self, key: str) -> str:
        key = key.lstrip("/")
        if self._local:
            return os.path.join(self._root_path, key)
        return f"s3://{self._root_path}/{key}"

    def _path(self, uri_or_key: str) -> str:
        if uri_or_key.startswith("s3://"):
            return uri_or_key[len("s3://") :]
        if uri_or_key.startswith("file://"):
            return uri_or_key[len("file://") :]
        if os.path.isabs(uri_or_key):
            return uri_or_key
        return f"{self._root_path}/{uri_or_key.lstrip('/')}"

    def put(self, key: str, data: bytes) -> tuple[str, str]:
        """Write ``data`` under ``key``; returns ``(uri, sha256)``.

        Local writes go to a temporary name and are renamed into place, so a
        reader never sees a half-written file.
        """
        uri = self.uri_for(key)
        path = self._path(uri)
        parent = path.rsplit("/", 1)[0]
        try:
            self._fs.create_dir(parent, recursive=True)
            target = f"{path}.tmp-{uuid.uuid4().hex}" if self._local else path
            with self._fs.open_output_stream(target) as out:
                out.write(data)
            if self._local:
                self._fs.move(target, path)
        except OSError as exc:
            raise StorageError(f"could not write {uri}: {exc}") from exc
        return uri, sha256_hex(data)

    def get(self, uri: str) -> bytes:
        try:
            with self._fs.open_input_stream(self._path(uri)) as src:
                return bytes(src.read())
        except FileNotFoundError as exc:
            raise StorageError(f"no object at {uri}") from exc
        except OSError as exc:
            raise StorageError(f"could not read {uri}: {exc}") from exc

    def exists(self, uri: str) -> bool:
        info = self._fs.get_file_info(self._path(uri))
        return bool(info.type == pafs.FileType.File)

    def delete(self, uri: str) -> None:
        try:
            self._fs.delete_file(self._path(uri))
        except FileNotFoundError:
            return
        except OSError as exc:
            raise StorageError(f"could not delete {uri}: {exc}") from exc
