"""Scenes read straight from S3 (``s3://bucket/key``) by `segpipe predict`: through GDAL's
/vsis3/, in ranged reads of the windows being predicted (nothing is downloaded whole), with
the credentials and endpoint of every S3 read of segpipe (components/sources.py: boto3's
chain, ``AWS_ENDPOINT_URL``, ``AWS_NO_SIGN_REQUEST``). ``check_s3_scene`` asks S3 for the
object's first bytes before any model loads: a missing object, refused credentials or an
endpoint that does not answer is one error naming the URI, and an object that is a VRT (by
its bytes, whatever its name) or does not open as a format a source may hold
(components/raster.py) is refused, as for a source's files."""

from __future__ import annotations

import os
from urllib.parse import urlsplit

import rasterio

from components.raster import DataError, open_raster
from components.sources import s3_client, s3_unsigned
from serving.decode import HEAD_BYTES, is_vrt_xml

S3_SCHEME = "s3://"

#: GDAL's own retries of a window read S3 answers with 429 or 5xx (SlowDown), so a long
#: prediction does not end on one busy moment of the store.
HTTP_RETRIES, HTTP_RETRY_DELAY_S = 3, 1


class S3AccessError(DataError):
    """S3 could not be asked for the object: no or refused credentials, an endpoint that does
    not answer. The environment's problem, not the scene's."""


def is_s3_uri(text: str) -> bool:
    return text.startswith(S3_SCHEME)


def s3_object(uri: str) -> tuple[str, str]:
    """``s3://bucket/key`` -> (bucket, key); a URI without a key, or ending in ``/`` (a
    prefix: a folder of objects), is refused."""
    bucket, _, key = uri[len(S3_SCHEME):].partition("/")
    if not bucket:
        raise DataError(f"{uri}: no bucket in S3 URI")
    if not key or key.endswith("/"):
        raise DataError(f"{uri}: names a prefix, not an object; give one scene object "
                        f"(s3://{bucket}/{key}scene.tif)")
    return bucket, key


def s3_gdal_env() -> rasterio.Env:
    """The GDAL settings /vsis3/ reads run under: boto3's credentials and region (handed to
    GDAL by rasterio, never printed); ``AWS_ENDPOINT_URL``'s host and scheme as GDAL's
    ``AWS_S3_ENDPOINT`` and ``AWS_HTTPS``, with path-style requests (a bucket name in the
    host, GDAL's default, does not resolve on a loopback or MinIO endpoint); no listing of the
    object's "folder" on open (GDAL looks there for sidecar files: requests over a whole
    prefix); and retries of a busy store. A GDAL setting of the environment wins."""
    import boto3
    from rasterio.session import AWSSession

    options = {"GDAL_DISABLE_READDIR_ON_OPEN": "EMPTY_DIR",
               "GDAL_HTTP_MAX_RETRY": str(HTTP_RETRIES),
               "GDAL_HTTP_RETRY_DELAY": str(HTTP_RETRY_DELAY_S)}
    if endpoint := os.environ.get("AWS_ENDPOINT_URL"):
        url = urlsplit(endpoint)
        options.update(AWS_S3_ENDPOINT=url.netloc + url.path.rstrip("/"),
                       AWS_HTTPS="YES" if url.scheme == "https" else "NO",
                       AWS_VIRTUAL_HOSTING="FALSE")
    session = AWSSession(boto3.Session(), aws_unsigned=s3_unsigned())
    return rasterio.Env(session=session,
                        **{k: v for k, v in options.items() if k not in os.environ})


def check_s3_scene(uri: str) -> str:
    """The GDAL driver ``uri``'s object opens with, after checking, before any pixel: it
    exists and can be read (one ranged GET of its first bytes), is not a VRT, and opens as a
    GeoTIFF, PNG, JPEG, JPEG 2000 or BMP (``open_raster``). A DataError naming the URI
    otherwise; an S3AccessError when the credentials or the endpoint are at fault."""
    bucket, key = s3_object(uri)
    head = _first_bytes(uri, bucket, key)
    if not head:
        raise DataError(f"{uri}: an empty object, not a raster")
    if is_vrt_xml(head):
        raise DataError(f"{uri}: a GDAL VRT is not read from S3 (it names other files to "
                        f"read); gdal_translate it to a GeoTIFF")
    with s3_gdal_env(), open_raster(uri) as src:
        return src.driver


def _first_bytes(uri: str, bucket: str, key: str) -> bytes:
    from botocore.exceptions import (
        BotoCoreError,
        ClientError,
        ConnectionError,
        NoCredentialsError,
    )

    try:
        client = s3_client()  # half-set credentials in the environment fail here
        answer = client.get_object(Bucket=bucket, Key=key, Range=f"bytes=0-{HEAD_BYTES - 1}")
        return answer["Body"].read()
    except ClientError as err:
        raise _refusal(uri, bucket, key, err) from None
    except NoCredentialsError:
        raise S3AccessError(f"{uri}: no AWS credentials: set AWS_ACCESS_KEY_ID and "
                            f"AWS_SECRET_ACCESS_KEY (or AWS_PROFILE), or AWS_NO_SIGN_REQUEST="
                            f"YES for a public bucket") from None
    except ConnectionError as err:  # refused, unresolved, timed out
        raise S3AccessError(f"{uri}: the S3 endpoint does not answer ({err})") from None
    except BotoCoreError as err:  # half-set credentials, a profile that is not there...
        raise S3AccessError(f"{uri}: cannot ask S3 for the object ({err})") from None


def _refusal(uri: str, bucket: str, key: str, err) -> DataError:
    """S3's answer to the ranged GET as an error naming ``uri``; S3's code, not its
    message, is quoted."""
    code = err.response.get("Error", {}).get("Code", "")
    status = err.response.get("ResponseMetadata", {}).get("HTTPStatusCode")
    if code == "NoSuchBucket":
        return DataError(f"{uri}: no such bucket {bucket!r}")
    if code in ("NoSuchKey", "404") or status == 404:
        if _is_prefix(bucket, key):
            return DataError(f"{uri}: no such object, but a prefix of objects; give one scene "
                             f"object (s3://{bucket}/{key}/scene.tif)")
        return DataError(f"{uri}: no such object")
    if code == "InvalidRange":  # a range of an empty object
        return DataError(f"{uri}: an empty object, not a raster")
    if status == 403 and s3_unsigned():
        return S3AccessError(f"{uri}: access denied ({code}) to a request without credentials "
                             f"(AWS_NO_SIGN_REQUEST): the object is not public; unset it and "
                             f"give credentials")
    if status == 403:
        return S3AccessError(f"{uri}: access denied ({code}): check the credentials "
                             f"(AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY, AWS_PROFILE) and "
                             f"the object's permissions")
    return S3AccessError(f"{uri}: S3 answered {status} {code}")


def _is_prefix(bucket: str, key: str) -> bool:
    try:
        page = s3_client().list_objects_v2(Bucket=bucket, Prefix=f"{key}/", MaxKeys=1)
    except Exception:  # listing may be denied where reading is not: then say no more
        return False
    return bool(page.get("KeyCount"))
