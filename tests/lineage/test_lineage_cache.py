"""Cache keys: what changes a step's key, and what does not."""

from __future__ import annotations

import hashlib

from threadline_common.lineage.cache import (
    StepIdentity,
    chain_keys,
    configuration,
    image_digest,
    source_version,
    step_key,
)

SOURCE = {"bucket": "in", "key": "incoming/p.csv", "uri": "s3://in/incoming/p.csv", "etag": "abc",
          "version_id": "v1"}
JOBDEF = "arn:aws:batch:us-east-1:1:job-definition/threadline-{}:1"
REGISTRY = "123456789012.dkr.ecr.us-east-1.amazonaws.com/threadline"


def pinned(name: str, build: str = "1") -> str:
    """An image reference pinned by digest, as `threadline deploy` registers job definitions."""
    return f"{REGISTRY}/{name}@sha256:{hashlib.sha256(f'{name}-{build}'.encode()).hexdigest()}"


def identities(run_id: str = "r1", seed: str = "7", analysis_image: str = pinned("analysis"),
               preprocess_image: str = pinned("preprocess")) -> dict[str, StepIdentity]:
    prefix = f"s3://mid/runs/{run_id}/"
    return {
        "preprocess": StepIdentity("preprocess", JOBDEF.format("preprocess"), preprocess_image, {
            "run_id": run_id, "input_uri": SOURCE["uri"], "output_prefix": prefix + "preprocess/",
            "quarantine_prefix": f"s3://q/{run_id}/", "max_reject_share": "0.05"}),
        "analysis": StepIdentity("analysis", JOBDEF.format("analysis"), analysis_image, {
            "run_id": run_id, "clean_uri": prefix + "preprocess/clean.parquet",
            "partials_prefix": prefix + "analysis/", "scenarios": "100", "horizon_days": "10", "seed": seed}),
        "postprocess": StepIdentity("postprocess", JOBDEF.format("postprocess"), pinned("postprocess"), {
            "run_id": run_id, "partials_prefix": prefix + "analysis/", "num_nodes": "2",
            "validation_uri": prefix + "preprocess/validation.json", "report_prefix": f"s3://out/runs/{run_id}/"}),
    }


def test_the_same_work_in_another_run_has_the_same_keys() -> None:
    first, second = chain_keys(identities("r1"), SOURCE), chain_keys(identities("r2"), SOURCE)

    assert first == second  # output prefixes and the run id are not what a step computes from
    assert all(len(key) == 32 for key in first.values()) and len(set(first.values())) == 3


def test_a_new_upload_of_the_same_bytes_keeps_the_keys_new_bytes_change_them_all() -> None:
    base = chain_keys(identities(), SOURCE)

    assert chain_keys(identities(), {**SOURCE, "version_id": "v2"}) == base  # same ETag: same content
    changed = chain_keys(identities(), {**SOURCE, "etag": "def"})
    assert all(changed[step] != base[step] for step in base)


def test_a_parameter_changes_its_step_and_what_follows_not_what_came_before() -> None:
    base, changed = chain_keys(identities(), SOURCE), chain_keys(identities(seed="8"), SOURCE)

    assert changed["preprocess"] == base["preprocess"]
    assert changed["analysis"] != base["analysis"] and changed["postprocess"] != base["postprocess"]


def test_an_image_changes_its_step_and_what_follows() -> None:
    base = chain_keys(identities(), SOURCE)
    analysis = chain_keys(identities(analysis_image=pinned("analysis", "2")), SOURCE)
    preprocess = chain_keys(identities(preprocess_image=pinned("preprocess", "2")), SOURCE)

    assert analysis["preprocess"] == base["preprocess"] and analysis["analysis"] != base["analysis"]
    assert all(preprocess[step] != base[step] for step in base)


def test_known_keys_stand_in_for_steps_that_did_not_run() -> None:
    base = chain_keys(identities(), SOURCE)
    later = {step: identity for step, identity in identities("r9").items() if step != "preprocess"}

    resumed = chain_keys(later, SOURCE, known={"preprocess": base["preprocess"]})

    assert resumed["analysis"] == base["analysis"]


def test_unknown_input_versions_give_no_key() -> None:
    analysis = identities()["analysis"]

    assert step_key(analysis, source_version(SOURCE), {}) is None
    assert source_version({"uri": "s3://b/k"}) is None
    assert source_version({"uri": "s3://b/k", "version_id": "v"}) == "s3://b/k#v"


def test_configuration_leaves_out_datasets_and_run_names() -> None:
    assert configuration("preprocess", identities()["preprocess"].parameters) == {"max_reject_share": "0.05"}
    assert configuration("postprocess", identities()["postprocess"].parameters) == {"num_nodes": "2"}


def test_an_image_counts_by_its_digest_not_by_its_name() -> None:
    digest = pinned("analysis").rsplit("@", 1)[1]
    base = chain_keys(identities(), SOURCE)
    # The same content pushed to another repository (or named with a tag as well) is the same image.
    moved = chain_keys(identities(analysis_image=f"other.example/mirror/analysis:v7@{digest}"), SOURCE)

    assert image_digest(pinned("analysis")) == digest and moved == base


def test_an_image_named_by_a_tag_gives_its_step_and_what_follows_no_key() -> None:
    """A tag can be pushed again with other code: nothing built from it is reused (issue 13, item 10)."""
    for tag in (f"{REGISTRY}/analysis:latest", f"{REGISTRY}/analysis:v2", f"{REGISTRY}/analysis", None,
                f"{REGISTRY}/analysis@sha256:abc"):
        keys = chain_keys(identities(analysis_image=tag), SOURCE)  # type: ignore[arg-type]

        assert image_digest(tag) is None
        assert keys["preprocess"] is not None and keys["analysis"] is None and keys["postprocess"] is None
