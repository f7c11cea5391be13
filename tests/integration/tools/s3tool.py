#!/usr/bin/env python3
"""s3tool.py — an S3 client for the tests' assertions, independent of regfs's
own driver and signer (boto3/botocore). Reads S3_ENDPOINT, S3_AK, S3_SK.

  s3tool.py mb BUCKET                 create a bucket
  s3tool.py ls BUCKET [PREFIX]        every key under PREFIX, one per line
  s3tool.py lsl BUCKET [PREFIX]       "size key" per line
  s3tool.py uploads BUCKET [PREFIX]   in-progress multipart uploads: "key uploadid"
  s3tool.py get BUCKET KEY            object bytes to stdout
  s3tool.py rmrf BUCKET [PREFIX]      delete every key under PREFIX, abort uploads
  s3tool.py mpu BUCKET KEY FILE...    start a multipart upload of KEY with FILEs as
                                      parts 1..n and leave it in progress (what
                                      distribution's driver leaves between requests)
  s3tool.py put BUCKET KEY FILE       upload FILE as KEY
"""
import os
import sys

import boto3
from botocore.config import Config


def client():
    return boto3.client(
        "s3",
        endpoint_url=os.environ["S3_ENDPOINT"],
        aws_access_key_id=os.environ["S3_AK"],
        aws_secret_access_key=os.environ["S3_SK"],
        region_name=os.environ.get("S3_REGION", "us-east-1"),
        config=Config(s3={"addressing_style": "path"}, retries={"max_attempts": 3},
                      connect_timeout=5, read_timeout=60),
    )


def keys(c, bucket, prefix):
    for page in c.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix):
        for o in page.get("Contents", []):
            yield o


def uploads(c, bucket, prefix):
    for page in c.get_paginator("list_multipart_uploads").paginate(Bucket=bucket, Prefix=prefix):
        for u in page.get("Uploads", []):
            yield u


def main(argv):
    if len(argv) < 3:
        print(__doc__, file=sys.stderr)
        return 2
    cmd, bucket = argv[1], argv[2]
    prefix = argv[3] if len(argv) > 3 else ""
    c = client()
    if cmd == "mb":
        try:
            c.create_bucket(Bucket=bucket)
        except c.exceptions.BucketAlreadyOwnedByYou:
            pass
    elif cmd == "ls":
        for o in keys(c, bucket, prefix):
            print(o["Key"])
    elif cmd == "lsl":
        for o in keys(c, bucket, prefix):
            print(o["Size"], o["Key"])
    elif cmd == "uploads":
        for u in uploads(c, bucket, prefix):
            print(u["Key"], u["UploadId"])
    elif cmd == "get":
        sys.stdout.buffer.write(c.get_object(Bucket=bucket, Key=prefix)["Body"].read())
    elif cmd == "rmrf":
        batch = []
        for o in keys(c, bucket, prefix):
            batch.append({"Key": o["Key"]})
            if len(batch) == 1000:
                c.delete_objects(Bucket=bucket, Delete={"Objects": batch})
                batch = []
        if batch:
            c.delete_objects(Bucket=bucket, Delete={"Objects": batch})
        for u in uploads(c, bucket, prefix):
            c.abort_multipart_upload(Bucket=bucket, Key=u["Key"], UploadId=u["UploadId"])
    elif cmd == "mpu":
        uid = c.create_multipart_upload(Bucket=bucket, Key=prefix)["UploadId"]
        for i, f in enumerate(argv[4:], 1):
            with open(f, "rb") as fh:
                c.upload_part(Bucket=bucket, Key=prefix, UploadId=uid, PartNumber=i, Body=fh.read())
        print(uid)
    elif cmd == "put":
        with open(argv[4], "rb") as fh:
            c.put_object(Bucket=bucket, Key=prefix, Body=fh.read())
    else:
        print(__doc__, file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
