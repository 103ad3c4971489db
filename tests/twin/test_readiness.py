"""An upload issued as early as possible after the twin starts is refused clearly ("starting") or starts a run.

The twin runs in a process of its own (moto's state is per process); a client
there uploads in a loop from the moment the port answers, with no retries of
its own, while another thread starts the twin.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

EARLY_UPLOAD = """
import json, sys, threading, time, urllib.error, urllib.request
from pathlib import Path
import boto3
from botocore.config import Config
from botocore.exceptions import ClientError, EndpointConnectionError
from threadline.twin.readiness import HEALTH_PATH
from threadline.twin.runs import find_execution
from threadline.twin.server import Twin, TwinConfig

twin = Twin(TwinConfig(workdir=Path(sys.argv[1])))
starting = threading.Thread(target=twin.start)
starting.start()
s3 = boto3.client("s3", endpoint_url=twin.endpoint_url, region_name="us-east-1", aws_access_key_id="testing",
                  aws_secret_access_key="testing", config=Config(retries={"total_max_attempts": 1}))
refusals, health = set(), set()
while True:
    try:
        urllib.request.urlopen(twin.endpoint_url + HEALTH_PATH, timeout=5)
        health.add(200)
    except urllib.error.HTTPError as exc:
        health.add(exc.code)
    except OSError:
        pass
    try:
        put = s3.put_object(Bucket="threadline-incomingbucket", Key="incoming/early.csv", Body=b"a,b\\n1,2\\n")
        break
    except EndpointConnectionError:
        time.sleep(0.005)
    except ClientError as exc:
        refusals.add((exc.response["ResponseMetadata"]["HTTPStatusCode"], exc.response["Error"]["Code"],
                      exc.response["Error"]["Message"]))
starting.join()
arn = find_execution(twin, "threadline-incomingbucket", "incoming/early.csv", put["VersionId"], timeout=60)
print(json.dumps({"refusals": sorted(refusals), "health": sorted(health), "started": arn.rsplit(":", 1)[-1]}))
twin.stop()
"""


def test_an_upload_as_early_as_possible_is_refused_as_starting_or_starts_a_run(tmp_path: Path) -> None:
    done = subprocess.run([sys.executable, "-c", EARLY_UPLOAD, str(tmp_path)], capture_output=True, text=True,
                          timeout=180, check=False)
    assert done.returncode == 0, done.stderr[-3000:]
    seen = json.loads(done.stdout.strip().splitlines()[-1])

    # Every refusal said "starting"; provisioning takes long enough that some came.
    assert seen["refusals"], seen
    for status, code, message in seen["refusals"]:
        assert (status, code) == (503, "ServiceUnavailable") and "twin is starting" in message
    assert 503 in seen["health"]
    # The upload that was taken started its run.
    assert seen["started"].startswith("early-")
