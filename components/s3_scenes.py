"""Scenes read straight from S3 (``s3://bucket/key``) by `segpipe predict`: through GDAL's
/vsis3/, in ranged reads of the windows being predicted (nothing is downloaded whole), with
the credentials and endpoint of every S3 read of segpipe (components/sources.py: boto3's
chain, ``AWS_ENDPOINT_URL``, ``AWS_NO_SIGN_REQUEST``). ``check_s3_scene`` asks S3 for the
object's first bytes before any model loads: a missing object, refused credentials or an
endpoint that does not answer is one error naming the URI, and an object that is a VRT (by
its bytes, whatever its name) or does not open as a format a source may hold
(components/raster.py) is refused, as for a source's files. An object is opened by its
/vsis3/ path and named by its URI (``S3Object``)."""

from __future__ import annotations

import os
from dataclasses import dataclass
from urllib.parse import urlsplit

import rasterio

from components.raster import DataError, open_raster
from components.sources import S3AccessError, s3_client, s3_unsigned, split_s3_uri
from serving.decode import HEAD_BYTES, is_vrt_xml

__all__ = ["S3AccessError", "S3Object", "check_s3_scene", "s3_gdal_env", "s3_object",
           "s3_read_problem"]

#: GDAL's own retries of a window read S3 answers with 429 or 5xx (SlowDown), so a long
#: prediction does not end on one busy moment of the store.
HTTP_RETRIES, HTTP_RETRY_DELAY_S = 3, 1


@dataclass(frozen=True)
class S3Object:
    """One S3 object as messages name it (``str``: its ``s3://`` URI) and as GDAL opens it
    (``os.fspath``: ``/vsis3/bucket/key``, which rasterio hands GDAL as it is). Given the URI,
    rasterio would parse it as a URL: a ``#`` or ``?`` in the key would start a fragment or
    a query, and another object would open."""

    bucket: str
    key: str

    def __str__(self) -> str:
        return f"s3://{self.bucket}/{self.key}"

    def __fspath__(self) -> str:
        return f"/vsis3/{self.bucket}/{self.key}"


def s3_object(uri: str) -> S3Object:
    """``s3://bucket/key`` as an S3Object; a URI without a key, or ending in ``/`` (a
    prefix: a folder of objects), is refused, as is one without a bucket name."""
    bucket, key = split_s3_uri(uri)
    if not key or key.endswith("/"):
        raise DataError(f"{uri}: names a prefix, not an object; give one scene object "
                        f"(s3://{bucket}/{key}scene.tif)")
    return S3Object(bucket, key)


def s3_gdal_env() -> rasterio.Env:
    """The GDAL settings /vsis3/ reads run under: boto3's credentials and region (handed to
    GDAL by rasterio, never printed); the endpoint boto3 resolved (``AWS_ENDPOINT_URL``,
    ``AWS_ENDPOINT_URL_S3``, ``~/.aws/config``), unless it is AWS's own, as GDAL's
    ``AWS_S3_ENDPOINT`` and ``AWS_HTTPS``, with path-style requests (a bucket name in the
    host, GDAL's default, does not resolve on a loopback or MinIO endpoint); no listing of
    the object's "folder" on open (requests over a whole prefix), its sidecar files (a PNG's
    .aux.xml or world file: CRS, nodata) looked for one by one; and retries of a busy store.
    A GDAL setting of the environment wins."""
    import boto3
    from rasterio.session import AWSSession

    options = {"GDAL_DISABLE_READDIR_ON_OPEN": "TRUE",
               "GDAL_HTTP_MAX_RETRY": str(HTTP_RETRIES),
               "GDAL_HTTP_RETRY_DELAY": str(HTTP_RETRY_DELAY_S)}
    endpoint = urlsplit(s3_client().meta.endpoint_url)
    if not (endpoint.hostname or "").endswith(_AWS_DOMAINS):
        options.update(AWS_S3_ENDPOINT=endpoint.netloc + endpoint.path.rstrip("/"),
                       AWS_HTTPS="YES" if endpoint.scheme == "https" else "NO",
                       AWS_VIRTUAL_HOSTING="FALSE")
    session = AWSSession(boto3.Session(), aws_unsigned=s3_unsigned())
    return rasterio.Env(session=session,
                        **{k: v for k, v in options.items() if k not in os.environ})


#: The hosts of AWS's own S3 endpoints, which GDAL finds by itself (region, virtual hosts).
_AWS_DOMAINS = (".amazonaws.com", ".amazonaws.com.cn")


def check_s3_scene(scene: S3Object) -> str:
    """The GDAL driver ``scene`` opens with, after checking, before any pixel: it exists and
    can be read (one ranged GET of its first bytes), is not a VRT, and opens as a GeoTIFF,
    PNG, JPEG, JPEG 2000 or BMP (``open_raster``). A DataError naming the URI otherwise; an
    S3AccessError when the credentials or the endpoint are at fault, also when S3 refuses
    GDAL's reads after the first GET (GDAL's own error would read as a corrupt file)."""
    head = _first_bytes(scene)
    if not head:
        raise DataError(f"{scene}: an empty object, not a raster")
    if is_vrt_xml(head):
        raise DataError(f"{scene}: a GDAL VRT is not read from S3 (it names other files to "
                        f"read); gdal_translate it to a GeoTIFF")
    try:
        with s3_gdal_env(), open_raster(scene) as src:
            return src.driver
    except DataError as err:
        raise (s3_read_problem(scene) or err) from None


def s3_read_problem(scene: S3Object) -> DataError | None:
    """Why S3 does not let ``scene`` be read now, asked again after a read of it failed
    (GDAL says "corrupt data" for a ranged read S3 refused: credentials that expired
    mid-scene, access revoked, the object deleted): S3's answer to a ranged GET as an
    S3AccessError or DataError naming the URI; None when the object reads."""
    try:
        _first_bytes(scene)
    except DataError as err:
        return err
    return None


def _first_bytes(scene: S3Object) -> bytes:
    from botocore.exceptions import (
        BotoCoreError,
        ClientError,
        ConnectionError,
        NoCredentialsError,
    )

    from components.tracking import redact_url

    try:
        client = s3_client()  # half-set credentials in the environment fail here
        answer = client.get_object(Bucket=scene.bucket, Key=scene.key,
                                   Range=f"bytes=0-{HEAD_BYTES - 1}")
        return answer["Body"].read()
    except S3AccessError as err:  # the endpoint is not a URL
        raise S3AccessError(f"{scene}: {err}") from None
    except ClientError as err:
        raise _refusal(scene, err) from None
    except NoCredentialsError:
        raise S3AccessError(f"{scene}: no AWS credentials: set AWS_ACCESS_KEY_ID and "
                            f"AWS_SECRET_ACCESS_KEY (or AWS_PROFILE), or AWS_NO_SIGN_REQUEST="
                            f"YES for a public bucket") from None
    except ConnectionError as err:  # refused, unresolved, timed out
        raise S3AccessError(f"{scene}: the S3 endpoint does not answer "
                            f"({redact_url(str(err))})") from None
    except BotoCoreError as err:  # half-set credentials, a profile that is not there...
        raise S3AccessError(f"{scene}: cannot ask S3 for the object "
                            f"({redact_url(str(err))})") from None


def _refusal(scene: S3Object, err) -> DataError:
    """S3's answer to the ranged GET as an error naming the object; S3's code, not its
    message, is quoted."""
    code = err.response.get("Error", {}).get("Code", "")
    status = err.response.get("ResponseMetadata", {}).get("HTTPStatusCode")
    bucket, key = scene.bucket, scene.key
    if code == "NoSuchBucket":
        return DataError(f"{scene}: no such bucket {bucket!r}")
    if code in ("NoSuchKey", "404") or status == 404:
        if _is_prefix(bucket, key):
            return DataError(f"{scene}: no such object, but a prefix of objects; give one "
                             f"scene object (s3://{bucket}/{key}/scene.tif), or the prefix "
                             f"with a final / for all of them (s3://{bucket}/{key}/)")
        return DataError(f"{scene}: no such object")
    if code == "InvalidRange":  # a range of an empty object
        return DataError(f"{scene}: an empty object, not a raster")
    if status == 403 and s3_unsigned():
        return S3AccessError(f"{scene}: access denied ({code}) to a request without "
                             f"credentials (AWS_NO_SIGN_REQUEST): the object is not public; "
                             f"unset it and give credentials")
    if status == 403:
        return S3AccessError(f"{scene}: access denied ({code}): check the credentials "
                             f"(AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY, AWS_PROFILE) and "
                             f"the object's permissions")
    return S3AccessError(f"{scene}: S3 answered {status} {code}")


def _is_prefix(bucket: str, key: str) -> bool:
    try:
        page = s3_client().list_objects_v2(Bucket=bucket, Prefix=f"{key}/", MaxKeys=1)
    except Exception:  # listing may be denied where reading is not: then say no more
        return False
    return bool(page.get("KeyCount"))
