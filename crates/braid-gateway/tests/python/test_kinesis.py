"""boto3 and AWS CLI v1 against Braid's Kinesis API.

Run by crates/braid-gateway/tests/python_compat.rs, which starts `braid dev` and sets
BRAID_KINESIS_ENDPOINTS (comma-separated http://host:port of every node) and AWS_CLI (the
`aws` script of its venv). By hand: start `braid dev`, then
    BRAID_KINESIS_ENDPOINTS=http://127.0.0.1:4567 python -m pytest test_kinesis.py
"""

import base64
import hashlib
import json
import os
import subprocess
import time
import uuid

import boto3
import botocore.config
import pytest
from botocore.exceptions import ClientError

ENDPOINTS = [e for e in os.environ.get("BRAID_KINESIS_ENDPOINTS", "").split(",") if e]
if not ENDPOINTS:
    pytest.skip("BRAID_KINESIS_ENDPOINTS is not set: no Braid to test", allow_module_level=True)

os.environ.setdefault("AWS_ACCESS_KEY_ID", "AKIDBRAIDTEST")
os.environ.setdefault("AWS_SECRET_ACCESS_KEY", "braid-test-secret")
os.environ.setdefault("AWS_DEFAULT_REGION", "us-east-1")

MAX_HASH = 2**128 - 1


def client(endpoint=None):
    return boto3.client(
        "kinesis",
        endpoint_url=endpoint or ENDPOINTS[0],
        config=botocore.config.Config(retries={"max_attempts": 3, "mode": "standard"}),
    )


@pytest.fixture(scope="module")
def k():
    return client()


@pytest.fixture(scope="module")
def raw():
    """A client that skips botocore's own parameter checks, so Braid's are what answers."""
    return boto3.client(
        "kinesis",
        endpoint_url=ENDPOINTS[0],
        config=botocore.config.Config(parameter_validation=False, retries={"max_attempts": 1}),
    )


def fresh_name(prefix="s"):
    return f"{prefix}-{uuid.uuid4().hex[:12]}"


def create_active(k, shards=1, **kw):
    name = fresh_name()
    k.create_stream(StreamName=name, ShardCount=shards, **kw)
    k.get_waiter("stream_exists").wait(StreamName=name, WaiterConfig={"Delay": 1, "MaxAttempts": 120})
    return name


def error_code(excinfo):
    return excinfo.value.response["Error"]["Code"]


def shard_for(shards, hash_key):
    for s in shards:
        r = s["HashKeyRange"]
        if int(r["StartingHashKey"]) <= hash_key <= int(r["EndingHashKey"]):
            return s["ShardId"]
    raise AssertionError(f"no shard holds {hash_key}")


def md5_hash(key):
    return int.from_bytes(hashlib.md5(key.encode("utf-8")).digest(), "big")


def iterator(k, name, shard_id, kind="TRIM_HORIZON", **kw):
    return k.get_shard_iterator(StreamName=name, ShardId=shard_id, ShardIteratorType=kind, **kw)["ShardIterator"]


def read_all(k, it, limit=1000):
    out = []
    while it:
        r = k.get_records(ShardIterator=it, Limit=limit)
        out.extend(r["Records"])
        it = r.get("NextShardIterator")
        if not r["Records"] and r["MillisBehindLatest"] == 0:
            break
    return out


# --- streams -------------------------------------------------------------------------------


def test_create_describe_list_delete_with_waiters(k):
    name = fresh_name()
    k.create_stream(StreamName=name, ShardCount=3)
    k.get_waiter("stream_exists").wait(StreamName=name, WaiterConfig={"Delay": 1, "MaxAttempts": 120})
    d = k.describe_stream(StreamName=name)["StreamDescription"]
    assert d["StreamName"] == name
    assert d["StreamARN"].startswith("arn:aws:kinesis:") and d["StreamARN"].endswith(f":stream/{name}")
    assert d["StreamStatus"] == "ACTIVE"
    assert d["StreamModeDetails"] == {"StreamMode": "PROVISIONED"}
    assert d["RetentionPeriodHours"] == 24
    assert d["EncryptionType"] == "NONE"
    assert d["EnhancedMonitoring"] == [{"ShardLevelMetrics": []}]
    assert d["HasMoreShards"] is False
    assert [s["ShardId"] for s in d["Shards"]] == [f"shardId-{i:012d}" for i in range(3)]
    assert d["Shards"][0]["HashKeyRange"]["StartingHashKey"] == "0"
    assert d["Shards"][-1]["HashKeyRange"]["EndingHashKey"] == str(MAX_HASH)
    for a, b in zip(d["Shards"], d["Shards"][1:]):
        assert int(a["HashKeyRange"]["EndingHashKey"]) + 1 == int(b["HashKeyRange"]["StartingHashKey"])
    for s in d["Shards"]:
        assert "EndingSequenceNumber" not in s["SequenceNumberRange"]
        assert int(s["SequenceNumberRange"]["StartingSequenceNumber"]) > 0
    assert abs(d["StreamCreationTimestamp"].timestamp() - time.time()) < 600

    summary = k.describe_stream_summary(StreamARN=d["StreamARN"])["StreamDescriptionSummary"]
    assert summary["OpenShardCount"] == 3
    assert summary["ConsumerCount"] == 0
    assert summary["StreamName"] == name

    listed = k.list_streams()
    assert name in listed["StreamNames"]
    assert any(s["StreamName"] == name and s["StreamStatus"] == "ACTIVE" for s in listed["StreamSummaries"])

    # Every node answers for the whole cluster.
    for e in ENDPOINTS:
        assert client(e).describe_stream_summary(StreamName=name)["StreamDescriptionSummary"]["StreamName"] == name

    k.delete_stream(StreamName=name)
    k.get_waiter("stream_not_exists").wait(StreamName=name, WaiterConfig={"Delay": 1, "MaxAttempts": 60})
    with pytest.raises(ClientError) as e:
        k.describe_stream(StreamName=name)
    assert error_code(e) == "ResourceNotFoundException"


def test_create_existing_stream_is_resource_in_use(k):
    name = create_active(k)
    with pytest.raises(ClientError) as e:
        k.create_stream(StreamName=name, ShardCount=1)
    assert error_code(e) == "ResourceInUseException"
    assert "already exists" in e.value.response["Error"]["Message"]


def test_pagination(k):
    names = sorted(create_active(k) for _ in range(3))
    seen = []
    for page in k.get_paginator("list_streams").paginate(PaginationConfig={"PageSize": 1}):
        assert len(page["StreamNames"]) <= 1
        seen.extend(page["StreamNames"])
    assert all(n in seen for n in names)
    assert seen == sorted(seen)

    name = create_active(k, shards=5)
    pages = list(k.get_paginator("list_shards").paginate(StreamName=name, PaginationConfig={"PageSize": 2}))
    assert [len(p["Shards"]) for p in pages] == [2, 2, 1]
    ids = [s["ShardId"] for p in pages for s in p["Shards"]]
    assert ids == [f"shardId-{i:012d}" for i in range(5)]
    desc_pages = list(k.get_paginator("describe_stream").paginate(StreamName=name, PaginationConfig={"PageSize": 2}))
    assert [s["ShardId"] for p in desc_pages for s in p["StreamDescription"]["Shards"]] == ids
    # ListShards by hand: NextToken alone, as the API documents.
    r = k.list_shards(StreamName=name, MaxResults=3)
    r2 = k.list_shards(NextToken=r["NextToken"])
    assert [s["ShardId"] for s in r["Shards"] + r2["Shards"]] == ids
    assert "NextToken" not in r2
    r = k.list_shards(StreamName=name, ShardFilter={"Type": "AFTER_SHARD_ID", "ShardId": "shardId-000000000002"})
    assert [s["ShardId"] for s in r["Shards"]] == ids[3:]


def test_retention_changes(k):
    name = create_active(k)
    k.increase_stream_retention_period(StreamName=name, RetentionPeriodHours=72)
    assert k.describe_stream_summary(StreamName=name)["StreamDescriptionSummary"]["RetentionPeriodHours"] == 72
    with pytest.raises(ClientError) as e:
        k.increase_stream_retention_period(StreamName=name, RetentionPeriodHours=48)
    assert error_code(e) == "InvalidArgumentException"
    k.decrease_stream_retention_period(StreamName=name, RetentionPeriodHours=24)
    with pytest.raises(ClientError) as e:
        k.decrease_stream_retention_period(StreamName=name, RetentionPeriodHours=23)
    assert error_code(e) == "InvalidArgumentException"


# --- records -------------------------------------------------------------------------------


def test_binary_data_and_one_mib_record_round_trip(k):
    name = create_active(k)
    every_byte = bytes(range(256))
    one_mib = os.urandom(1024 * 1024)
    r1 = k.put_record(StreamName=name, Data=every_byte, PartitionKey="bytes")
    r2 = k.put_record(StreamName=name, Data=one_mib, PartitionKey="big")
    r3 = k.put_record(StreamName=name, Data=b"", PartitionKey="empty")
    assert r1["EncryptionType"] == "NONE"
    assert int(r1["SequenceNumber"]) < int(r2["SequenceNumber"]) < int(r3["SequenceNumber"])
    recs = read_all(k, iterator(k, name, "shardId-000000000000"))
    assert [r["Data"] for r in recs] == [every_byte, one_mib, b""]
    assert [r["PartitionKey"] for r in recs] == ["bytes", "big", "empty"]
    assert [r["SequenceNumber"] for r in recs] == [r1["SequenceNumber"], r2["SequenceNumber"], r3["SequenceNumber"]]
    for r in recs:
        assert abs(r["ApproximateArrivalTimestamp"].timestamp() - time.time()) < 600


def test_ten_mib_record_after_update_max_record_size(k, raw):
    name = create_active(k)
    arn = k.describe_stream_summary(StreamName=name)["StreamDescriptionSummary"]["StreamARN"]
    k.update_max_record_size(StreamARN=arn, MaxRecordSizeInKiB=10240)
    ten_mib = os.urandom(10 * 1024 * 1024)
    k.put_record(StreamName=name, Data=ten_mib, PartitionKey="huge")
    recs = read_all(k, iterator(k, name, "shardId-000000000000"))
    assert [x["Data"] for x in recs] == [ten_mib]
    with pytest.raises(ClientError) as e:
        raw.update_max_record_size(StreamARN=arn, MaxRecordSizeInKiB=10241)
    assert error_code(e) == "ValidationException"


def test_md5_and_explicit_hash_key_routing(k):
    name = create_active(k, shards=4)
    shards = k.list_shards(StreamName=name)["Shards"]
    keys = [f"user-{i}" for i in range(200)] + ["é-ünicode-ключ", "x" * 256]
    out = k.put_records(StreamName=name, Records=[{"Data": key.encode(), "PartitionKey": key} for key in keys])
    assert out["FailedRecordCount"] == 0
    assert out["EncryptionType"] == "NONE"
    for key, r in zip(keys, out["Records"]):
        assert r["ShardId"] == shard_for(shards, md5_hash(key)), key
    for h in [0, MAX_HASH, MAX_HASH // 2, int(shards[1]["HashKeyRange"]["StartingHashKey"])]:
        r = k.put_record(StreamName=name, Data=b"e", PartitionKey="ignored", ExplicitHashKey=str(h))
        assert r["ShardId"] == shard_for(shards, h)
    # Every record can be read back from the shard it was routed to, in order.
    by_shard = {}
    for key, r in zip(keys, out["Records"]):
        by_shard.setdefault(r["ShardId"], []).append((r["SequenceNumber"], key))
    for shard_id, expect in by_shard.items():
        got = [(r["SequenceNumber"], r["PartitionKey"]) for r in read_all(k, iterator(k, name, shard_id))]
        assert got[: len(expect)] == expect


def test_every_iterator_type(k):
    name = create_active(k)
    shard = "shardId-000000000000"
    seqs = [k.put_record(StreamName=name, Data=f"r{i}".encode(), PartitionKey="p")["SequenceNumber"] for i in range(5)]
    recs = read_all(k, iterator(k, name, shard))
    assert [r["SequenceNumber"] for r in recs] == seqs

    at = k.get_records(ShardIterator=iterator(k, name, shard, "AT_SEQUENCE_NUMBER", StartingSequenceNumber=seqs[2]))
    assert [r["Data"] for r in at["Records"]] == [b"r2", b"r3", b"r4"]
    after = k.get_records(ShardIterator=iterator(k, name, shard, "AFTER_SEQUENCE_NUMBER", StartingSequenceNumber=seqs[2]))
    assert [r["Data"] for r in after["Records"]] == [b"r3", b"r4"]

    ts = recs[3]["ApproximateArrivalTimestamp"]
    at_ts = k.get_records(ShardIterator=iterator(k, name, shard, "AT_TIMESTAMP", Timestamp=ts))
    assert seqs[3] in [r["SequenceNumber"] for r in at_ts["Records"]]
    assert all(r["ApproximateArrivalTimestamp"] >= ts for r in at_ts["Records"])

    latest = iterator(k, name, shard, "LATEST")
    r = k.get_records(ShardIterator=latest)
    assert r["Records"] == [] and r["NextShardIterator"]
    new = k.put_record(StreamName=name, Data=b"new", PartitionKey="p")["SequenceNumber"]
    it, got = r["NextShardIterator"], []
    for _ in range(50):
        r = k.get_records(ShardIterator=it)
        got += r["Records"]
        if got:
            break
        it = r["NextShardIterator"]
        time.sleep(0.05)
    assert [x["SequenceNumber"] for x in got] == [new]

    # Limit and MillisBehindLatest.
    r = k.get_records(ShardIterator=iterator(k, name, shard), Limit=2)
    assert len(r["Records"]) == 2 and r["MillisBehindLatest"] >= 0

    with pytest.raises(ClientError) as e:
        iterator(k, name, shard, "AT_SEQUENCE_NUMBER")
    assert error_code(e) == "InvalidArgumentException"
    with pytest.raises(ClientError) as e:
        iterator(k, name, shard, "TRIM_HORIZON", StartingSequenceNumber=seqs[0])
    assert error_code(e) == "InvalidArgumentException"


def test_kpl_aggregated_records_round_trip(k):
    agg = pytest.importorskip("aws_kinesis_agg.aggregator")
    deagg = pytest.importorskip("aws_kinesis_agg.deaggregator")
    name = create_active(k)
    aggregator = agg.RecordAggregator()
    users = [(f"user-{i}", f"payload {i}".encode() * (i + 1)) for i in range(50)]
    for key, data in users:
        assert aggregator.add_user_record(key, data) is None
    pk, ehk, blob = aggregator.clear_and_get().get_contents()
    extra = {"ExplicitHashKey": ehk} if ehk else {}
    k.put_record(StreamName=name, Data=blob, PartitionKey=pk, **extra)
    recs = read_all(k, iterator(k, name, "shardId-000000000000"))
    assert recs[0]["Data"] == blob
    out = list(deagg.iter_deaggregate_records(recs, data_format="Boto3"))
    assert [(r["kinesis"]["partitionKey"], base64.b64decode(r["kinesis"]["data"])) for r in out] == users
    assert [r["kinesis"]["subSequenceNumber"] for r in out] == list(range(50))


# --- tags, monitoring, limits ----------------------------------------------------------------


def test_tags_monitoring_and_limits(k):
    name = create_active(k, Tags={"team": "core"})
    arn = k.describe_stream_summary(StreamName=name)["StreamDescriptionSummary"]["StreamARN"]
    k.add_tags_to_stream(StreamName=name, Tags={"env": "dev", "z": ""})
    assert k.list_tags_for_stream(StreamName=name)["Tags"] == [
        {"Key": "env", "Value": "dev"},
        {"Key": "team", "Value": "core"},
        {"Key": "z", "Value": ""},
    ]
    page = k.list_tags_for_stream(StreamName=name, Limit=1, ExclusiveStartTagKey="env")
    assert page["Tags"] == [{"Key": "team", "Value": "core"}] and page["HasMoreTags"] is True
    k.remove_tags_from_stream(StreamName=name, TagKeys=["z", "missing"])
    k.tag_resource(ResourceARN=arn, Tags={"via": "arn"})
    k.untag_resource(ResourceARN=arn, TagKeys=["env"])
    assert k.list_tags_for_resource(ResourceARN=arn)["Tags"] == [
        {"Key": "team", "Value": "core"},
        {"Key": "via", "Value": "arn"},
    ]
    with pytest.raises(ClientError) as e:
        k.add_tags_to_stream(StreamName=name, Tags={f"k{i}": "v" for i in range(60)})
    assert error_code(e) == "InvalidArgumentException"

    on = k.enable_enhanced_monitoring(StreamName=name, ShardLevelMetrics=["IncomingBytes", "OutgoingRecords"])
    assert on["CurrentShardLevelMetrics"] == [] and on["DesiredShardLevelMetrics"] == ["IncomingBytes", "OutgoingRecords"]
    off = k.disable_enhanced_monitoring(StreamName=name, ShardLevelMetrics=["IncomingBytes"])
    assert off["DesiredShardLevelMetrics"] == ["OutgoingRecords"]
    assert k.describe_stream(StreamName=name)["StreamDescription"]["EnhancedMonitoring"] == [
        {"ShardLevelMetrics": ["OutgoingRecords"]}
    ]

    limits = k.describe_limits()
    assert limits["ShardLimit"] >= limits["OpenShardCount"] >= 1

    k.put_resource_policy(ResourceARN=arn, Policy=json.dumps({"Version": "2012-10-17", "Statement": []}))
    assert json.loads(k.get_resource_policy(ResourceARN=arn)["Policy"])["Version"] == "2012-10-17"
    k.delete_resource_policy(ResourceARN=arn)
    assert k.get_resource_policy(ResourceARN=arn)["Policy"] == "{}"

    k.update_max_record_size(StreamARN=arn, MaxRecordSizeInKiB=2048)
    assert k.describe_stream_summary(StreamName=name)["StreamDescriptionSummary"]["MaxRecordSizeInKiB"] == 2048
    k.put_record(StreamName=name, Data=b"m" * (2 * 1024 * 1024), PartitionKey="big")
    with pytest.raises(ClientError) as e:
        k.put_record(StreamName=name, Data=b"m" * (2 * 1024 * 1024 + 1), PartitionKey="big")
    assert error_code(e) == "ValidationException"

    settings = k.update_account_settings(MinimumThroughputBillingCommitment={"Status": "ENABLED"})
    assert settings["MinimumThroughputBillingCommitment"]["Status"] == "ENABLED"
    assert k.describe_account_settings()["MinimumThroughputBillingCommitment"]["Status"] == "ENABLED"
    k.update_account_settings(MinimumThroughputBillingCommitment={"Status": "DISABLED"})


# --- errors --------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def stream(k):
    return create_active(k, shards=2)


@pytest.mark.parametrize(
    "key, fragment",
    [
        ("", "Member must have length greater than or equal to 1"),
        ("k" * 257, "Member must have length less than or equal to 256"),
    ],
)
def test_partition_key_validation(raw, stream, key, fragment):
    k = raw
    with pytest.raises(ClientError) as e:
        k.put_record(StreamName=stream, Data=b"x", PartitionKey=key)
    assert error_code(e) == "ValidationException"
    msg = e.value.response["Error"]["Message"]
    assert msg.startswith("1 validation error detected: Value '") and "at 'partitionKey'" in msg and fragment in msg
    with pytest.raises(ClientError) as e:
        k.put_records(StreamName=stream, Records=[{"Data": b"x", "PartitionKey": "ok"}, {"Data": b"x", "PartitionKey": key}])
    assert error_code(e) == "ValidationException"
    assert "at 'records.2.member.partitionKey'" in e.value.response["Error"]["Message"]


def test_oversized_data_and_too_many_records(raw, stream):
    k = raw
    with pytest.raises(ClientError) as e:
        k.put_record(StreamName=stream, Data=b"x" * (1024 * 1024 + 1), PartitionKey="k")
    assert error_code(e) == "ValidationException"
    assert "1048576" in e.value.response["Error"]["Message"]
    with pytest.raises(ClientError) as e:
        k.put_records(StreamName=stream, Records=[{"Data": b"x", "PartitionKey": "k"}] * 501)
    assert error_code(e) == "ValidationException"
    assert "Member must have length less than or equal to 500" in e.value.response["Error"]["Message"]
    with pytest.raises(ClientError) as e:
        k.put_records(StreamName=stream, Records=[])
    assert error_code(e) == "ValidationException"
    with pytest.raises(ClientError) as e:
        k.put_record(StreamName=stream, Data=b"x", PartitionKey="k", ExplicitHashKey=str(2**128))
    assert error_code(e) == "InvalidArgumentException"


@pytest.mark.parametrize("bad", ["bad name", "x" * 129, "slash/name", ""])
def test_bad_stream_names(raw, bad):
    k = raw
    with pytest.raises(ClientError) as e:
        k.create_stream(StreamName=bad, ShardCount=1)
    assert error_code(e) == "ValidationException"
    assert "at 'streamName' failed to satisfy constraint" in e.value.response["Error"]["Message"]


def test_unknown_streams(k):
    for call in [
        lambda: k.describe_stream(StreamName="no-such-stream"),
        lambda: k.describe_stream_summary(StreamName="no-such-stream"),
        lambda: k.put_record(StreamName="no-such-stream", Data=b"x", PartitionKey="k"),
        lambda: k.put_records(StreamName="no-such-stream", Records=[{"Data": b"x", "PartitionKey": "k"}]),
        lambda: k.get_shard_iterator(StreamName="no-such-stream", ShardId="shardId-000000000000", ShardIteratorType="LATEST"),
        lambda: k.list_shards(StreamName="no-such-stream"),
        lambda: k.delete_stream(StreamName="no-such-stream"),
        lambda: k.list_tags_for_stream(StreamName="no-such-stream"),
    ]:
        with pytest.raises(ClientError) as e:
            call()
        assert error_code(e) == "ResourceNotFoundException"
        assert "no-such-stream" in e.value.response["Error"]["Message"]


def test_tampered_and_garbage_iterators(k, raw, stream):
    it = iterator(k, stream, "shardId-000000000000")
    flipped = it[:-3] + ("A" if it[-3] != "A" else "B") + it[-2:]
    for bad in [flipped, "garbage", it[:20]]:
        with pytest.raises(ClientError) as e:
            k.get_records(ShardIterator=bad)
        assert error_code(e) == "InvalidArgumentException"
    with pytest.raises(ClientError) as e:
        raw.get_records(ShardIterator="x" * 513)
    assert error_code(e) == "ValidationException"


def test_unsupported_operations_say_so(k, stream):
    arn = k.describe_stream_summary(StreamName=stream)["StreamDescriptionSummary"]["StreamARN"]
    for call in [
        lambda: k.split_shard(StreamName=stream, ShardToSplit="shardId-000000000000", NewStartingHashKey="1"),
        lambda: k.merge_shards(StreamName=stream, ShardToMerge="shardId-000000000000", AdjacentShardToMerge="shardId-000000000001"),
        lambda: k.update_shard_count(StreamName=stream, TargetShardCount=4, ScalingType="UNIFORM_SCALING"),
        lambda: k.register_stream_consumer(StreamARN=arn, ConsumerName="c"),
        lambda: k.start_stream_encryption(StreamName=stream, EncryptionType="KMS", KeyId="alias/aws/kinesis"),
        lambda: k.update_stream_mode(StreamARN=arn, StreamModeDetails={"StreamMode": "ON_DEMAND"}),
        lambda: k.create_stream(StreamName=fresh_name(), StreamModeDetails={"StreamMode": "ON_DEMAND"}),
    ]:
        with pytest.raises(ClientError) as e:
            call()
        assert error_code(e) == "InvalidArgumentException"
        assert "Braid does not support" in e.value.response["Error"]["Message"]
        assert e.value.response["ResponseMetadata"]["HTTPStatusCode"] == 400


def test_request_ids_on_success_and_error(k, stream):
    ok = k.list_streams()["ResponseMetadata"]
    assert len(ok["RequestId"]) == 36
    with pytest.raises(ClientError) as e:
        k.describe_stream(StreamName="no-such-stream")
    assert len(e.value.response["ResponseMetadata"]["RequestId"]) == 36


# --- AWS CLI v1 ----------------------------------------------------------------------------


def aws(*args):
    cli = os.environ.get("AWS_CLI")
    if not cli:
        pytest.skip("AWS_CLI is not set")
    out = subprocess.run(
        [cli, "kinesis", *args, "--endpoint-url", ENDPOINTS[-1], "--output", "json"],
        capture_output=True,
        text=True,
        timeout=120,
    )
    return out.returncode, out.stdout, out.stderr


def test_aws_cli(k):
    name = fresh_name("cli")
    rc, _, err = aws("create-stream", "--stream-name", name, "--shard-count", "2")
    assert rc == 0, err
    k.get_waiter("stream_exists").wait(StreamName=name, WaiterConfig={"Delay": 1, "MaxAttempts": 120})
    rc, out, err = aws("wait", "stream-exists", "--stream-name", name)
    assert rc == 0, err
    rc, out, err = aws("describe-stream-summary", "--stream-name", name)
    assert rc == 0, err
    assert json.loads(out)["StreamDescriptionSummary"]["OpenShardCount"] == 2
    # CLI v1 sends --data as text (it base64-encodes it itself).
    rc, out, err = aws("put-record", "--stream-name", name, "--partition-key", "cli-key", "--data", "hello from the cli")
    assert rc == 0, err
    put = json.loads(out)
    rc, out, err = aws("get-shard-iterator", "--stream-name", name, "--shard-id", put["ShardId"], "--shard-iterator-type", "TRIM_HORIZON")
    assert rc == 0, err
    rc, out, err = aws("get-records", "--shard-iterator", json.loads(out)["ShardIterator"])
    assert rc == 0, err
    rec = json.loads(out)["Records"][0]
    assert base64.b64decode(rec["Data"]) == b"hello from the cli"
    assert rec["SequenceNumber"] == put["SequenceNumber"] and rec["PartitionKey"] == "cli-key"
    rc, out, err = aws("list-shards", "--stream-name", name, "--page-size", "1")
    assert rc == 0, err
    assert [s["ShardId"] for s in json.loads(out)["Shards"]] == ["shardId-000000000000", "shardId-000000000001"]
    rc, out, err = aws("list-streams")
    assert rc == 0, err
    assert name in json.loads(out)["StreamNames"]
    rc, out, err = aws("describe-stream", "--stream-name", "no-such-stream")
    assert rc != 0 and "ResourceNotFoundException" in err
    rc, _, err = aws("delete-stream", "--stream-name", name)
    assert rc == 0, err
    rc, _, err = aws("wait", "stream-not-exists", "--stream-name", name)
    assert rc == 0, err
