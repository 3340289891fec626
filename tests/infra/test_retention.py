"""retentionDays: a deployment that keeps a model's history a stated number of days."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from aws_cdk.assertions import Annotations, Match, Template
from cfnlint.api import lint_file
from infra.storage import RETAINED_AREAS, retention_days
from tests.infra.synthesis import synthesize


def _rules(template: Template, log_prefix: str) -> dict[str, dict]:
    buckets = template.find_resources(
        "AWS::S3::Bucket", {"Properties": {"LoggingConfiguration": {"LogFilePrefix": log_prefix}}}
    )
    (bucket,) = buckets.values()
    return {r["Id"]: r for r in bucket["Properties"]["LifecycleConfiguration"]["Rules"]}


@pytest.fixture(scope="module")
def kept_400_days(tmp_path_factory: pytest.TempPathFactory):
    return synthesize(tmp_path_factory.mktemp("cdk.out"), retentionDays="400")


def test_history_expires_after_the_retention_and_nothing_else_changes(kept_400_days) -> None:
    rules = _rules(kept_400_days.template("storage"), "data/")
    expiring = {r["Prefix"]: r["ExpirationInDays"] for r in rules.values() if r["Id"].startswith("history-")}
    assert expiring == {
        "inferences/": 400,
        "inference_ids/": 400,
        "labels/": 400,
        "ground_truth/": 400,
    }
    assert set(expiring) == set(RETAINED_AREAS)
    # the reference set and what expires on its own schedule are as without the setting
    assert not any(r.get("Prefix", "").startswith("reference") for r in rules.values())
    assert rules["partial-aggregates"]["ExpirationInDays"] == 14
    assert rules["rejected-rows"]["ExpirationInDays"] == 90


def test_the_capture_bucket_sagewatch_made_keeps_capture_files_as_long(kept_400_days) -> None:
    rules = _rules(kept_400_days.template("ingest"), "capture/")
    assert rules["history-all"]["ExpirationInDays"] == 400
    assert rules["history-all"].get("Prefix") in (None, "")
    assert rules["old-versions"]["NoncurrentVersionExpiration"]["NoncurrentDays"] == 30
    assert rules["expired-delete-markers"]["ExpiredObjectDeleteMarker"] is True


def test_without_the_setting_history_is_kept(templates: dict[str, Template]) -> None:
    rules = _rules(templates["storage"], "data/")
    assert not [r for r in rules.values() if r["Id"].startswith("history-")]
    capture = templates["ingest"].find_resources(
        "AWS::S3::Bucket", {"Properties": {"LoggingConfiguration": {"LogFilePrefix": "capture/"}}}
    )
    (bucket,) = capture.values()
    assert "LifecycleConfiguration" not in bucket["Properties"]


@pytest.mark.parametrize("value", ["0", "-5", "ten", "1.5", "30d", "1e3", "true", "+5", "²", "٣", "3\n4"])
def test_a_retention_that_is_not_a_number_of_days_stops_the_synthesis(tmp_path: Path, value: str) -> None:
    with pytest.raises(
        ValueError, match=re.escape(f"retentionDays must be a whole number of days, 1 or more: got {value!r}")
    ):
        synthesize(tmp_path, retentionDays=value)


@pytest.mark.parametrize(("value", "days"), [(" 30 ", 30), ("0365", 365), (90, 90), ("", None), (None, None)])
def test_a_retention_as_typed_or_as_a_json_number_in_cdk_json(value: object, days: int | None) -> None:
    """`-c retentionDays=" 30 "`, or cdk.json's `"retentionDays": 90` (a number, not text)."""
    assert retention_days(value) == days


def test_a_json_number_in_cdk_json_synthesizes_its_rules(tmp_path: Path) -> None:
    rules = _rules(synthesize(tmp_path, retentionDays=90, nag="false").template("storage"), "data/")  # type: ignore[arg-type]
    assert rules["history-inferences"]["ExpirationInDays"] == 90


@pytest.mark.parametrize("value", [True, 90.0, [90]])
def test_a_json_value_that_is_not_a_whole_number_stops_the_synthesis(value: object) -> None:
    with pytest.raises(ValueError, match="retentionDays must be a whole number of days, 1 or more"):
        retention_days(value)


@pytest.mark.parametrize("short", ["storage", "ingest"])
def test_the_retained_stacks_pass_cfn_lint(kept_400_days, short: str) -> None:
    matches = lint_file(kept_400_days.template_file(short))
    assert [f"{m.rule.id} {m.message}" for m in matches if m.rule.severity == "error"] == []


@pytest.mark.parametrize("short", ["storage", "ingest"])
def test_the_retained_stacks_pass_cdk_nag(kept_400_days, short: str) -> None:
    errors = Annotations.from_stack(kept_400_days.stack(short)).find_error(
        "*", Match.string_like_regexp("AwsSolutions-.*")
    )
    assert [f"{e.id}: {str(e.entry.data)[:120]}" for e in errors] == []


def _expiring_without_old_versions(template: Template) -> list[str]:
    """Versioned buckets whose objects expire while their old versions (the data itself) are kept."""
    found = []
    for name, bucket in template.find_resources("AWS::S3::Bucket").items():
        properties = bucket["Properties"]
        if properties.get("VersioningConfiguration", {}).get("Status") != "Enabled":
            continue
        rules = properties.get("LifecycleConfiguration", {}).get("Rules", [])
        expiring = any("ExpirationInDays" in r for r in rules)
        whole = [r for r in rules if not r.get("Prefix") and "Filter" not in r]  # every object
        if expiring and not any("NoncurrentVersionExpiration" in r for r in whole):
            found.append(name)
        elif expiring and not any(r.get("ExpiredObjectDeleteMarker") for r in whole):
            found.append(f"{name} (delete markers)")
    return found


@pytest.mark.parametrize("short", ["storage", "ingest", "api", "monitor"])
def test_what_expires_leaves_no_old_version_behind(
    templates: dict[str, Template], kept_400_days, short: str
) -> None:
    """An expired object of a versioned bucket stays as its old version until that expires too: the
    Athena results (rows a query answered) as much as the lake's history."""
    assert _expiring_without_old_versions(templates[short]) == []
    assert _expiring_without_old_versions(kept_400_days.template(short)) == []
