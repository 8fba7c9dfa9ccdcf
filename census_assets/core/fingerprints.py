"""The content fingerprint: one format for every "has this file's content changed?" question
(inbox batches, label files, file sources)."""

import hashlib
from typing import BinaryIO

PREFIX = "sha256:"


def content_fingerprint(data: bytes) -> str:
    return PREFIX + hashlib.sha256(data).hexdigest()


def stream_fingerprint(handle: BinaryIO) -> str:
    return PREFIX + hashlib.file_digest(handle, "sha256").hexdigest()
