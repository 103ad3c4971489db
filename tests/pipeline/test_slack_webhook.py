"""Slack's webhook answering errors, end to end through the twin's Slack stand-in.

The Slack function retries a failed POST itself, within its 30 s timeout; when
Slack keeps failing, the function fails, Lambda retries the async event twice,
and the notice lands in the function's dead-letter queue. A good run never
waits on any of it.
"""

from __future__ import annotations

from pathlib import Path

from pipeline_helpers import until

from threadline.twin.runs import slack_messages

SAMPLE = (Path(__file__).resolve().parents[2] / "src" / "threadline" / "data" / "sample-positions.csv").read_bytes()
NOTICES = ["run_started", "run_succeeded"]


def dead_letter_count(twin) -> int:
    attributes = twin.client("sqs").get_queue_attributes(
        QueueUrl=twin.physical_id("NotifySlackDeadLetterQueue"),
        AttributeNames=["ApproximateNumberOfMessages"])["Attributes"]
    return int(attributes["ApproximateNumberOfMessages"])


def slack_outcomes(twin) -> list:
    """The Slack function's async invocations that have ended (retries included), oldest first."""
    runtime = twin.lambda_runtime
    assert runtime is not None and runtime.async_invoker is not None
    return [o for o in list(runtime.async_invoker.outcomes)
            if runtime.find(o.function).logical_id == "NotifySlackFunction"]


def test_slack_answering_502_twice_is_retried_by_the_function_itself(run_pipeline, twin):
    twin.wait_for_async()
    outcomes_before = len(slack_outcomes(twin))
    letters_before = dead_letter_count(twin)
    twin.slack.fail_next(502, 2, run_id="slack-502")
    try:
        result = run_pipeline("slack-502.csv", SAMPLE)
    finally:
        twin.slack.clear_failures()

    assert result.status == "SUCCEEDED", result.cause
    assert [m["kind"] for m in result.slack] == NOTICES
    answers = [(r.kind, r.answer) for r in twin.slack.received if r.run_id == result.run_id]
    assert answers == [("run_started", 502), ("run_started", 502), ("run_started", 200), ("run_succeeded", 200)]
    # One invocation per notice: the retries were the function's, not Lambda's.
    assert twin.wait_for_async(60)
    ended = slack_outcomes(twin)[outcomes_before:]
    assert len(ended) >= 2 and all(o.succeeded and o.attempts == 1 for o in ended)
    assert dead_letter_count(twin) == letters_before


def test_slack_answering_500_always_sends_the_notices_to_the_dead_letter_queue(run_pipeline, twin):
    twin.wait_for_async()
    outcomes_before = len(slack_outcomes(twin))
    letters_before = dead_letter_count(twin)
    twin.slack.fail_next(500, None, run_id="slack-500")
    try:
        result = run_pipeline("slack-500.csv", SAMPLE)

        assert result.status == "SUCCEEDED", result.cause  # Slack down never fails a run
        # Each notice: 3 invocations (Lambda's 2 retries) of up to 6 POSTs (the function's 5 retries, their
        # backoff scaled by the twin's slack_backoff_scale), then the dead-letter queue.
        until(lambda: dead_letter_count(twin) >= letters_before + 2, 150, "both notices in the dead-letter queue")
        assert dead_letter_count(twin) == letters_before + 2
        assert twin.wait_for_async(60)
    finally:
        twin.slack.clear_failures()

    assert slack_messages(twin, result.run_id) == []
    received = [r for r in twin.slack.received if r.run_id == result.run_id]
    assert {r.kind for r in received} == set(NOTICES) and {r.answer for r in received} == {500}
    for kind in NOTICES:  # every invocation posted at least once
        assert sum(1 for r in received if r.kind == kind) >= 3
    dead_lettered = [o for o in slack_outcomes(twin)[outcomes_before:] if not o.succeeded]
    assert [o.attempts for o in dead_lettered] == [3, 3]
    queue_name = twin.physical_id("NotifySlackDeadLetterQueue").rsplit("/", 1)[-1]
    assert all((o.dead_lettered_to or "").endswith(f":{queue_name}") for o in dead_lettered)
