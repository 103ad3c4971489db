"""Fair share: one scheduling policy on every job queue, teams the start function knows, shares on every SubmitJob."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from threadline_common import pipeline

ASL_PATH = Path(__file__).resolve().parents[2] / "statemachines" / "pipeline.asl.json"


def _share_identifiers(resources: dict[str, Any]) -> list[str]:
    policy = resources["TeamSchedulingPolicy"]["Properties"]["FairsharePolicy"]
    return [share["ShareIdentifier"] for share in policy["ShareDistribution"]]


def test_every_job_queue_schedules_by_the_team_policy(resources: dict[str, Any]) -> None:
    queues = {name: r for name, r in resources.items() if r["Type"] == "AWS::Batch::JobQueue"}
    assert {job.queue for _, job in pipeline.jobs()} <= set(queues)
    for name, queue in queues.items():
        assert queue["Properties"].get("SchedulingPolicyArn") == {"Ref": "TeamSchedulingPolicy"}, name


def test_weights_give_each_team_a_real_share(resources: dict[str, Any]) -> None:
    policy = resources["TeamSchedulingPolicy"]["Properties"]["FairsharePolicy"]
    identifiers = _share_identifiers(resources)
    assert len(identifiers) == len(set(identifiers)) >= 2
    for share in policy["ShareDistribution"]:
        assert 0.0001 <= float(share["WeightFactor"]) <= 999.9999  # Batch's accepted range
        assert share["ShareIdentifier"].isalnum() and len(share["ShareIdentifier"]) <= 255


def test_the_start_function_knows_the_policys_teams_and_its_default(template: dict[str, Any],
                                                                    resources: dict[str, Any]) -> None:
    variables = resources["StartRunFunction"]["Properties"]["Environment"]["Variables"]
    assert variables["TEAMS"].split(",") == _share_identifiers(resources)
    assert variables["DEFAULT_TEAM"] == {"Ref": "DefaultTeam"}
    assert template["Parameters"]["DefaultTeam"]["Default"] in _share_identifiers(resources)


def test_every_submit_job_names_the_runs_team() -> None:
    """A queue with a scheduling policy refuses a job without shareIdentifier; the team rides in `$.source`."""
    states = json.loads(ASL_PATH.read_text(encoding="utf-8"))["States"]
    submits = {job.state for _, job in pipeline.jobs()}
    for name in submits:
        parameters = states[name]["Parameters"]
        assert parameters["ShareIdentifier.$"] == "$.source.team", name
        assert isinstance(parameters.get("SchedulingPriorityOverride", 0), int), name
    spot = [states[job.state]["Parameters"].get("SchedulingPriorityOverride", 0)
            for step in ("preprocess", "postprocess") for job in pipeline.step(step).jobs]
    assert spot[2] > spot[0] and spot[3] > spot[1]  # within a team, runs in flight finish before new ones start
