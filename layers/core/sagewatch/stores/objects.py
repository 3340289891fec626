"""SourceObjects: the S3 objects sagewatch ingests (capture files, ground truth, drops), read in place.

The one place that knows how S3 says an object is gone or changed: a missing key (404) or a
version that no longer matches the event's ETag (412) is `SourceGone`, which retrying cannot cure;
any other failure of AWS propagates as botocore raised it, so the message is retried.
"""

from __future__ import annotations

import io
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from botocore.exceptions import ClientError

from sagewatch import aws
from sagewatch.errors import SourceGone
from sagewatch.stores.dynamo import error_code

_GONE = {"NoSuchKey", "404", "NotFound", "PreconditionFailed", "412"}


@contextmanager
def _gone_as_source_gone(bucket: str, key: str) -> Iterator[None]:
    try:
        yield
    except ClientError as error:
        if error_code(error) in _GONE:
            raise SourceGone(
                f"s3://{bucket}/{key} is gone or changed since its event ({error_code(error)})"
            ) from error
        raise


class SourceObjects:
    """Objects of any bucket sagewatch is told about, read by their version (ETag)."""

    def __init__(self, client: Any = None) -> None:
        self._client = client

    @property
    def client(self) -> Any:
        return self._client or aws.client("s3")

    def head(self, bucket: str, key: str) -> dict[str, Any]:
        """The object's metadata (ETag, LastModified, ContentLength)."""
        with _gone_as_source_gone(bucket, key):
            return self.client.head_object(Bucket=bucket, Key=key)

    def chunks(self, bucket: str, key: str, etag: str, size: int) -> Iterator[bytes]:
        """The object's bytes, `size` at a time, as one GET streams them."""
        with _gone_as_source_gone(bucket, key):
            body = self.client.get_object(Bucket=bucket, Key=key, IfMatch=etag)["Body"]
        with _gone_as_source_gone(bucket, key):
            yield from body.iter_chunks(size)

    def open(self, bucket: str, key: str, etag: str, size: int, buffer_size: int) -> io.BufferedReader:
        """A seekable file over the object, read by ranged GETs (see S3RangeFile)."""
        return io.BufferedReader(S3RangeFile(self.client, bucket, key, etag, size), buffer_size=buffer_size)


class S3RangeFile(io.RawIOBase):
    """A seekable, read-only file over one version of an S3 object, read by ranged GETs.

    pyarrow's ParquetFile reads a footer and then the column chunks it needs; through this (in an
    io.BufferedReader) a Parquet drop of any size streams from S3 with bounded memory and no local
    disk (a Lambda has 512 MB of /tmp). `If-Match` pins every range to the version the event named.
    """

    def __init__(self, client: Any, bucket: str, key: str, etag: str, size: int) -> None:
        super().__init__()
        self.client, self.bucket, self.key, self.etag, self.size = client, bucket, key, etag, size
        self.position = 0

    def readable(self) -> bool:
        """True: the file can be read (not written)."""
        return True

    def seekable(self) -> bool:
        """True: a seek only moves the position; each read is a ranged GET."""
        return True

    def tell(self) -> int:
        """The current position."""
        return self.position

    def seek(self, offset: int, whence: int = io.SEEK_SET) -> int:
        """Move the position (`whence` as io's SEEK_*; never before 0); returns it."""
        base = {io.SEEK_SET: 0, io.SEEK_CUR: self.position, io.SEEK_END: self.size}[whence]
        self.position = max(0, base + offset)
        return self.position

    def readinto(self, buffer: Any) -> int:
        """Fill `buffer` from the position by one ranged GET of the pinned version; 0 at the end."""
        if self.position >= self.size or len(buffer) == 0:
            return 0
        end = min(self.size, self.position + len(buffer)) - 1
        with _gone_as_source_gone(self.bucket, self.key):
            body = self.client.get_object(
                Bucket=self.bucket, Key=self.key, IfMatch=self.etag, Range=f"bytes={self.position}-{end}"
            )["Body"].read()
        memoryview(buffer)[: len(body)] = body
        self.position += len(body)
        return len(body)
