"""The job zygote parses botocore's models once; each forked job's sessions reuse them, nothing else."""

from __future__ import annotations

import json
import subprocess
import sys

PROBE = """
import json, os, sys
import boto3, botocore.loaders, botocore.session
from threadline.twin import job_zygote

job_zygote.share_botocore_models(job_zygote.BOTOCORE_SERVICES, "job zygote")
pid = os.fork()
if pid == 0:  # a job: its own environment, its own sessions
    os.environ.update({"AWS_ACCESS_KEY_ID": "job-key", "AWS_SECRET_ACCESS_KEY": "job-secret",
                       "AWS_ENDPOINT_URL": "http://127.0.0.1:4599"})
    reads = []
    read = botocore.loaders.JSONFileLoader.load_file
    botocore.loaders.JSONFileLoader.load_file = lambda self, path: reads.append(path) or read(self, path)
    session = boto3.session.Session(region_name="eu-west-1")
    s3 = session.client("s3")
    loader = session._session.get_component("data_loader")
    own = botocore.session.Session()
    own.set_config_variable("data_path", os.path.dirname(botocore.__file__) + "/data")
    print(json.dumps({
        "model_reads": [path for path in reads if "/s3/" in path and not path.endswith("sdk-extras")],
        "key": s3._request_signer._credentials.access_key, "region": s3.meta.region_name,
        "endpoint": s3.meta.endpoint_url,
        "shared": loader is botocore.session.get_session().get_component("data_loader"),
        "own_path_shared": own.get_component("data_loader") is loader,
    }), flush=True)
    os._exit(0)
os.waitpid(pid, 0)
"""


def test_a_forked_job_reads_no_model_file_and_keeps_its_own_credentials_region_and_endpoint():
    done = subprocess.run([sys.executable, "-c", PROBE], capture_output=True, text=True, timeout=120, check=False)
    assert done.returncode == 0, done.stderr[-3000:]
    seen = json.loads(done.stdout.strip().splitlines()[-1])
    assert seen["model_reads"] == []
    assert (seen["key"], seen["region"], seen["endpoint"]) == ("job-key", "eu-west-1", "http://127.0.0.1:4599")
    assert seen["shared"] is True
    assert seen["own_path_shared"] is False  # a session with a data path of its own parses for itself


SAME_HANDLERS_PROBE = """
import json, os, sys
import boto3
from threadline.twin import job_zygote

EVENTS = [f"{kind}.{service}.{operation}" for kind in (
    "provide-client-params", "before-parameter-build", "before-call", "request-created", "choose-signer",
    "before-sign", "before-send", "needs-retry", "after-call", "after-call-error")
    for service, operation in (("s3", "PutObject"), ("s3", "GetObject"), ("dynamodb", "PutItem"))]


def handlers() -> dict:
    session = boto3.session.Session(region_name="us-east-1", aws_access_key_id="k", aws_secret_access_key="s")
    found = {}
    for service in ("s3", "dynamodb"):
        events = session.client(service).meta.events
        found.update({name: [getattr(h, "__qualname__", repr(h)) for h in events._emitter._handlers.prefix_search(
            events._alias_event_name(name))] for name in EVENTS if f".{service}." in name})
    return found


own = handlers()  # as botocore registers them
job_zygote.share_botocore_models(job_zygote.BOTOCORE_SERVICES, "job zygote")
pid = os.fork()
if pid == 0:
    print(json.dumps({"own": own, "forked": handlers(), "again": handlers()}), flush=True)
    os._exit(0)
os.waitpid(pid, 0)
"""


def test_a_forked_job_s_clients_have_the_handlers_botocore_itself_gives_them():
    # The zygote keeps the answers of botocore's per-handler checks; each client must still get the same
    # handlers, in the same order, for every stage of a call.
    done = subprocess.run([sys.executable, "-c", SAME_HANDLERS_PROBE], capture_output=True, text=True, timeout=120,
                          check=False)
    assert done.returncode == 0, done.stderr[-3000:]
    seen = json.loads(done.stdout.strip().splitlines()[-1])
    assert sum(len(found) for found in seen["own"].values()) > 30  # the probe looked at real handler lists
    assert seen["forked"] == seen["own"]
    assert seen["again"] == seen["own"]
