"""Where scenes come from: a local folder, a ``.zip``/``.tar`` archive (extracted safely,
components/extract.py) or an ``s3://bucket/prefix`` (through boto3, so ``AWS_ENDPOINT_URL``
and the usual credential variables apply: ``s3_client``, which `segpipe predict`'s S3
scenes use too). Each source is materialised as a local folder for discovery. S3 objects
are held to the archives' byte limits before any download."""

from __future__ import annotations

import errno
import os
import re
import tarfile
import zipfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from components.extract import (
    UNREADABLE,
    Budget,
    ExtractLimits,
    extract_tar,
    extract_zip,
    is_archive,
    make_dirs,
    reason,
    safe_member_path,
    tar_members,
    write_failure,
    zip_members,
)
from components.raster import DataError

__all__ = ["ExtractLimits", "S3AccessError", "check_source", "download_s3_prefix",
           "is_s3_uri", "materialize_source", "s3_client", "s3_error", "s3_unsigned",
           "split_s3_uri"]

S3_SCHEME = "s3://"
#: The bucket names boto3 sends (S3's own rules are stricter, MinIO's and old buckets'
#: looser): another is refused naming the URI rather than in boto3's words.
_BUCKET_NAME = re.compile(r"[A-Za-z0-9._-]{1,255}")


class S3AccessError(DataError):
    """S3 could not be asked: no or refused credentials, an endpoint that does not answer or
    is not a URL. The environment's problem, not the data's."""


def is_s3_uri(text: str) -> bool:
    return text.startswith(S3_SCHEME)


def split_s3_uri(uri: str) -> tuple[str, str]:
    """``s3://bucket/rest`` -> (bucket, rest); a DataError naming ``uri`` when it has no
    bucket or one of a name no bucket can have."""
    bucket, _, rest = uri[len(S3_SCHEME):].partition("/")
    if not bucket:
        raise DataError(f"{uri}: no bucket in S3 URI")
    if not _BUCKET_NAME.fullmatch(bucket):
        raise DataError(f"{uri}: {bucket!r} is not an S3 bucket name (letters, digits, '.', "
                        f"'-' and '_' only)")
    return bucket, rest


def _s3_location(uri: str) -> tuple[str, str]:
    """``s3://bucket/prefix`` -> (bucket, "prefix/"): a prefix names a folder."""
    bucket, prefix = split_s3_uri(uri)
    if prefix and not prefix.endswith("/"):
        prefix += "/"
    return bucket, prefix


def s3_unsigned() -> bool:
    """Whether S3 requests go unsigned (a public bucket, no credentials): ``AWS_NO_SIGN_REQUEST``
    read as GDAL and rasterio read it, so boto3's requests and GDAL's /vsis3/ reads agree; set
    but empty it is unset (the ``segpipe`` command drops it at start-up, for GDAL too)."""
    from rasterio.session import parse_bool

    return parse_bool(os.environ.get("AWS_NO_SIGN_REQUEST") or False)


def s3_endpoint_url() -> str | None:
    """``$AWS_ENDPOINT_URL`` (None: unset), checked: one that is not ``http(s)://host[:port]``
    is an S3AccessError naming the variable (its password redacted), not boto3's or
    urllib's traceback at the first request."""
    from components.tracking import redact_url
    from serving.urls import UrlError, check_http_url

    endpoint = os.environ.get("AWS_ENDPOINT_URL") or None
    if endpoint is not None:
        try:
            check_http_url(endpoint, "AWS_ENDPOINT_URL", "http://127.0.0.1:9000")
        except UrlError as exc:
            raise S3AccessError(redact_url(str(exc))) from None
    return endpoint


def s3_client():
    """The boto3 S3 client of every S3 read: ``AWS_ENDPOINT_URL`` (MinIO, moto...; checked)
    else boto3's own (``AWS_ENDPOINT_URL_S3``, ``~/.aws/config``, AWS), and boto3's
    credential chain as the environment has it now (a session of its own: boto3's default
    one keeps the credentials it first found), unsigned with ``AWS_NO_SIGN_REQUEST``."""
    import boto3
    from botocore import UNSIGNED
    from botocore.config import Config

    from components.tracking import redact_url

    endpoint = s3_endpoint_url()
    config = Config(signature_version=UNSIGNED) if s3_unsigned() else None
    try:
        return boto3.session.Session().client("s3", endpoint_url=endpoint, config=config)
    except ValueError as err:  # an endpoint boto3 found itself is not a URL
        raise S3AccessError(f"the S3 endpoint is not a URL ({redact_url(str(err))}): check "
                            f"AWS_ENDPOINT_URL_S3 and ~/.aws/config's endpoint_url") from None


def s3_error(uri: str, doing: str, err: Exception) -> DataError:
    """``{uri}: cannot {doing} ({err})`` for boto3's ``err``: any password in the endpoint
    URL it quotes redacted, and ``AWS_NO_SIGN_REQUEST`` named when S3 refused an unsigned
    request."""
    from components.tracking import redact_url

    status = getattr(err, "response", {}).get("ResponseMetadata", {}).get("HTTPStatusCode")
    hint = ("; the requests were unsigned (AWS_NO_SIGN_REQUEST is set): unset it and give "
            "credentials" if status == 403 and s3_unsigned() else "")
    return DataError(f"{uri}: cannot {doing} ({redact_url(str(err))}){hint}")


def download_s3_prefix(uri: str, dest: Path, limits: ExtractLimits | None = None) -> int:
    """Download every object under ``s3://bucket/prefix`` into ``dest``; return the count.
    Every object is listed first, so the byte limits hold before anything is downloaded."""
    bucket, prefix = _s3_location(uri)
    limits = limits or ExtractLimits()
    budget = Budget(uri, limits, 0, member=lambda key: f"s3://{bucket}/{key}")
    try:
        client = s3_client()  # half-set credentials in the environment fail here
        objects = [(obj["Key"], int(obj.get("Size", 0)))
                   for page in client.get_paginator("list_objects_v2").paginate(
                       Bucket=bucket, Prefix=prefix)
                   for obj in page.get("Contents", []) if not obj["Key"].endswith("/")]
        for key, size in objects:
            safe_member_path(uri, key[len(prefix):], dest)
            budget.declared(key, size)
        total = sum(size for _, size in objects)
        if total > limits.total_bytes:
            raise DataError(f"{uri}: objects hold {total:,} bytes in all, more than the "
                            f"{limits.total_bytes:,} allowed")
        for key, _ in objects:
            target = safe_member_path(uri, key[len(prefix):], dest)
            make_dirs(uri, key, target.parent)
            try:
                client.download_file(bucket, key, str(target))
            except OSError as err:
                if err.errno not in _WRITE_ERRNOS:
                    raise
                raise write_failure(f"s3://{bucket}", key, target, err, "downloading") from None
        count = len(objects)
    except DataError:
        raise
    except Exception as err:  # botocore raises many unrelated types; name the source
        raise s3_error(uri, "list or download objects", err) from err
    return count


# A download's errors that are our disk's, not the bucket's: full, over quota, file too
# large for it, read-only.
_WRITE_ERRNOS = (errno.ENOSPC, errno.EDQUOT, errno.EFBIG, errno.EROFS)

#: The most keys ``check_source`` lists under an S3 prefix: one listing request.
S3_CHECK_KEYS = 1000


def check_source(source: str, limits: ExtractLimits | None = None) -> None:
    """What a cheap listing shows wrong with an ``s3://`` or archive source, before a run
    starts rather than in its ingest step: an S3 prefix without objects (among its first
    ``S3_CHECK_KEYS`` keys) or one it cannot list; an archive that does not open, holds no
    files, or whose zip directory or plain tar headers break the extraction's rules. A
    compressed tar is only opened: listing it means decompressing it. Local folders are
    checked by discovery (``components.ingest.find_pairs``)."""
    limits = limits or ExtractLimits()
    if is_s3_uri(source):
        _check_s3(source, limits)
        return
    path = Path(source).expanduser()
    if not path.exists():
        raise DataError(f"{source}: no such file or folder")
    if path.is_dir():
        return
    if not is_archive(path):
        raise DataError(f"{source}: not a folder, a .zip/.tar archive or an s3:// prefix")
    budget, nowhere = Budget(path, limits, path.stat().st_size), path.parent / ".check"
    try:
        if path.name.lower().endswith(".zip"):
            with zipfile.ZipFile(path) as zf:
                files = [i for i in zip_members(path, zf, nowhere, budget) if not i.is_dir()]
        elif path.name.lower().endswith(".tar"):
            with tarfile.open(path) as tf:
                files = [m for m in tar_members(path, tf, nowhere, budget) if m.isfile()]
        else:
            with tarfile.open(path) as tf:
                first = tf.next()
                files = [first] if first is not None else []
    except UNREADABLE as err:
        raise DataError(f"{path}: cannot read archive ({reason(err)})") from None
    if not files:
        raise DataError(f"{path}: the archive holds no files")


def _check_s3(uri: str, limits: ExtractLimits) -> None:
    bucket, prefix = _s3_location(uri)
    try:
        page = s3_client().list_objects_v2(Bucket=bucket, Prefix=prefix,
                                            MaxKeys=S3_CHECK_KEYS)
    except DataError:
        raise
    except Exception as err:  # botocore raises many unrelated types; name the source
        raise s3_error(uri, "list objects", err) from err
    budget = Budget(uri, limits, 0, member=lambda key: f"s3://{bucket}/{key}")
    objects = [obj for obj in page.get("Contents", []) if not obj["Key"].endswith("/")]
    for obj in objects:
        budget.declared(obj["Key"], int(obj.get("Size", 0)))
    if not objects and not page.get("IsTruncated"):
        raise DataError(f"{uri}: no objects under this S3 prefix")


@contextmanager
def materialize_source(source: str, scratch: Path,
                       limits: ExtractLimits | None = None) -> Iterator[Path]:
    """Yield a local folder holding the scenes of ``source``; downloads and extractions go
    under ``scratch`` (the caller removes it)."""
    if is_s3_uri(source):
        dest = scratch / "s3"
        make_dirs(source, "", dest)
        if download_s3_prefix(source, dest, limits) == 0:
            raise DataError(f"{source}: no objects under this S3 prefix")
        yield dest
        return
    path = Path(source).expanduser()
    if not path.exists():
        raise DataError(f"{source}: no such file or folder")
    if path.is_dir():
        yield path
    elif is_archive(path):
        dest = scratch / "archive"
        make_dirs(path, "", dest)
        try:
            if path.name.lower().endswith(".zip"):
                extract_zip(path, dest, limits)
            else:
                extract_tar(path, dest, limits)
        except UNREADABLE as err:
            raise DataError(f"{path}: cannot read archive ({reason(err)})") from None
        yield dest
    else:
        raise DataError(f"{source}: not a folder, a .zip/.tar archive or an s3:// prefix")
