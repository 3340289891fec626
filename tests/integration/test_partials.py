"""Windows measured from per-file partial aggregates equal the raw path's, and an independent count,
over a lake with duplicates within a file and across files, a file landing late with an earlier
ingested_at, a replayed source and a late file (issue 18: a run's cost follows its new files)."""

from __future__ import annotations

import contextlib
import threading
import time
import uuid
from collections import Counter
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from tests import factories
from tests.factories import Clock

from sagewatch import aws as sagewatch_aws
from sagewatch import container
from sagewatch.alerting import catalog
from sagewatch.alerting.reads import RunReads
from sagewatch.alerting.types import Metric, Rule
from sagewatch.container import evaluator, ingestor
from sagewatch.records import reference_rows, rows_from_columns
from sagewatch.schema import Model, ModelSpec
from sagewatch.services.ingestion import Source
from sagewatch.stores import partials as stored_partials
from sagewatch.stores.partials import PartialReads
from sagewatch.stores.window import lake_loader

DAY = datetime(2026, 11, 25, tzinfo=UTC)
NOW = DAY + timedelta(hours=11, minutes=2)


@pytest.fixture
def clock(aws: dict[str, str]) -> Clock:
    moment = Clock(NOW)
    evaluator().clock = moment
    return moment


def new_model(name: str = "churn") -> Model:
    body = factories.binary_probability(name)
    model = container.model_store().create(ModelSpec.model_validate(body))
    rng = np.random.default_rng(1)
    table, _ = reference_rows(
        {
            "age": pa.array(rng.integers(18, 90, 2000)),
            "income": pa.array(rng.normal(0, 1, 2000)),
            "region": pa.array(rng.choice(["north", "south"], 2000)),
            "predicted_probability": pa.array(rng.random(2000)),
        },
        2000,
        model,
    )
    writer = ingestor().writer(model, Source(uuid.uuid4().hex, "test"))
    writer.add(NOW.date(), reference=table)
    writer.finish()
    return model


class Lake:
    """Rows written to the lake, and the same rows kept here to resolve by hand."""

    def __init__(self, models: list[Model]) -> None:
        self.models = models
        self.rows: list[dict] = []  # every row written, in writing order
        self.order = 0

    def write(
        self, name: str, ids: list[str], minutes: np.ndarray, ingested: datetime, seed: int, again: int = 0
    ) -> None:
        """One source (lake file `name`) ingested at `ingested`, its first `again` rows written twice
        in it (the copies later in the file, with other values); rewriting a name replaces its rows."""
        rng = np.random.default_rng(seed)
        count = len(ids)
        columns = {
            "partner_inference_id": ids,
            "inference_timestamp": [DAY + timedelta(minutes=float(m)) for m in minutes],
            "age": rng.integers(18, 90, count),
            "income": np.where(rng.random(count) < 0.1, np.nan, rng.normal(0.3, 1, count)),
            "region": rng.choice(["north", "south"], count),
            "predicted_probability": rng.random(count),
        }
        self.rows = [r for r in self.rows if r["file"] != name]
        for model in self.models:
            rows = rows_from_columns(
                {k: pa.array(v, from_pandas=True) for k, v in columns.items()},
                count,
                model,
                source=f"test/{name}",
                now=ingested,
                require_inference=True,
            )
            assert rows.failures == 0, rows.problem
            written = rows.inferences
            if again:  # a file holding an id twice (the lake may: the reader keeps its first)
                copies = written.slice(0, again)
                where = copies.schema.get_field_index("predicted_probability")
                copies = copies.set_column(where, "predicted_probability", pa.array(np.full(again, 0.999)))
                written = pa.concat_tables([written, copies])
            writer = ingestor().writer(model, Source(name, f"test/{name}"))
            writer.add(ingested.date(), inferences=written)
            writer.finish()
        names = written.column("partner_inference_id").to_pylist()
        stamps = written.column("inference_timestamp").to_pylist()
        probabilities = written.column("predicted_probability").to_pylist()
        regions = written.column("region").to_pylist()
        ages = written.column("age").to_pylist()
        for position, (i, t, p, r, age) in enumerate(
            zip(names, stamps, probabilities, regions, ages, strict=True)
        ):
            self.rows.append(
                {
                    "file": name,
                    "id": i,
                    "time": t,
                    "p": p,
                    "region": r,
                    "age": age,
                    "at": ingested,
                    "place": position,
                }
            )

    def first_writes(self) -> list[dict]:
        """By hand: per id the row ingested first, then from the source named first, then the row first
        in its file (one source per file here)."""
        best: dict[str, dict] = {}
        for row in self.rows:
            key = (row["at"], f"test/{row['file']}", row["place"])
            if row["id"] not in best or key < best[row["id"]][0]:
                best[row["id"]] = (key, row)
        return [row for _, row in best.values()]


def minutes(rng: np.random.Generator, low: float, high: float, count: int) -> np.ndarray:
    return np.sort(rng.uniform(low, high, count))


def metrics_of(model: Model) -> list[tuple[Metric, dict | None, list | None]]:
    """Metrics as rules measure them: the default rules' two, an average with a rule's filter, a
    null rate, the count."""
    defaults = {m.name: m for m in catalog.default_metrics(model)}
    return [
        (defaults[catalog.INPUT_DRIFT], None, None),
        (defaults[catalog.ANOMALOUS_INFERENCES], {"cutoff": 0.5, "share": 0.3, "share_rows": 500}, None),
        (
            defaults["Average predicted_probability"],
            None,
            [{"property": "region", "comparator": "eq", "value": "north"}],
        ),
        (defaults["Null Rate income"], None, None),
        (defaults["Inference Count"], None, None),
    ]


def windows() -> list[tuple[datetime, datetime]]:
    """Aligned hours, 5-minute windows, sliding hours, a window with no rows."""
    hours = [(DAY + timedelta(hours=h), DAY + timedelta(hours=h + 1)) for h in range(7, 12)]
    fives = [(DAY + timedelta(minutes=m), DAY + timedelta(minutes=m + 5)) for m in range(470, 620, 5)]
    sliding = [(DAY + timedelta(minutes=m - 60), DAY + timedelta(minutes=m)) for m in range(500, 700, 5)]
    return [*hours, *fives, *sliding, (DAY + timedelta(hours=3), DAY + timedelta(hours=4))]


def same(value: float | None, expected: float | None) -> bool:
    """Equal, or within float rounding (sums merged in another order)."""
    if value is None or expected is None:
        return value is expected
    return value == pytest.approx(expected, rel=1e-12, abs=1e-15)


def forget_process() -> None:
    """A new process: the day's fingerprints and the partials read are no longer kept."""
    for cache in (stored_partials._DAYS, stored_partials._TABLES):
        cache.items.clear()
        cache.total = 0


@contextlib.contextmanager
def watching(operation: str, hook: Callable[..., None]) -> Iterator[None]:
    """`hook(params)` before each S3 `operation` (GetObject, PutObject) the process's client sends."""
    s3 = sagewatch_aws.client("s3")
    event = f"before-parameter-build.s3.{operation}"
    s3.meta.events.register(event, hook)
    try:
        yield
    finally:
        s3.meta.events.unregister(event, hook)


def check_equal(model: Model, lake: Lake) -> PartialReads:
    """Every window of every metric from partials equals the raw path's (RunReads, as the evaluator
    measures), and the counts and averages equal those of the rows resolved by hand."""
    reads = PartialReads(container.lake_store(), model)
    raw = RunReads(lake_loader(container.lake_store(), model))
    spans = windows()
    kept = lake.first_writes()
    for metric, values, filters in metrics_of(model):
        spec = catalog.partial_spec(metric, model, raw, values, filters)
        assert spec is not None, metric.name
        found = reads.measure(spec, spans)
        for (start, end), result in zip(spans, found, strict=True):
            window = catalog.Window(start, end)
            load = raw if metric.is_drift else raw.within(start, end)
            expected = catalog.measure(metric, model, load, window, values, filters)
            assert result is not None
            got = catalog.measurement(result)
            assert (got.rows, got.labelled) == (expected.rows, expected.labelled), (metric.name, start, end)
            assert same(got.value, expected.value), (metric.name, start, end, got, expected)
            assert (got.details is None) == (expected.details is None)
            for name in expected.details or {}:
                assert same(got.details[name], expected.details[name]), (name, start, end)
            inside = [r for r in kept if start <= r["time"] < end]
            if metric.name == "Inference Count":
                assert got.rows == len(inside)
                assert got.value == (len(inside) if inside else got.value)
            if metric.name.startswith("Average"):
                north = [r["p"] for r in inside if r["region"] == "north"]
                assert got.value == (pytest.approx(np.mean(north)) if north else None)
    return reads


def test_partials_equal_the_raw_path_through_duplicates_late_and_replayed_files(clock: Clock) -> None:
    # GIVEN a model's day: a file with an id written twice in it, and a later file resending some of
    # its ids (the first write wins)
    model = new_model()
    lake = Lake([model])
    rng = np.random.default_rng(3)
    a = [f"a{i}" for i in range(300)]
    lake.write("f1", a, minutes(rng, 420, 600, 300), NOW - timedelta(minutes=60), 1, again=7)
    b = [f"b{i}" for i in range(300)]
    lake.write("f2", [*b, *a[:40]], minutes(rng, 450, 650, 340), NOW - timedelta(minutes=50), 2)

    # WHEN windows are measured from partials (made in this run), THEN they equal the raw path's
    first = check_equal(model, lake)
    assert first.computed == 2 * 5

    # AND a second run makes none: it reads stored partials only
    again = check_equal(model, lake)
    assert again.computed == 0

    # WHEN a file lands late with an earlier ingested_at than f2's (a concurrent ingest), resending
    # ids of both (so it wins over f2's copies and loses to f1's), THEN values still equal
    lake.write(
        "f0",
        [*b[100:150], *a[250:280], *[f"c{i}" for i in range(100)]],
        minutes(rng, 400, 640, 180),
        NOW - timedelta(minutes=55),
        3,
    )
    late = check_equal(model, lake)
    assert late.computed == 3 * 5  # f0 new; f1 and f2 have a new partner: new versions

    # WHEN f1's source is replayed (its rows rewritten with a later ingested_at, so f2's and f0's
    # copies of its ids now come first), THEN values still equal
    lake.write("f1", a, minutes(np.random.default_rng(3), 420, 600, 300), NOW, 1, again=7)
    check_equal(model, lake)

    # WHEN a late file of an earlier hour lands, sharing no id, THEN only it is made
    lake.write("f3", [f"d{i}" for i in range(50)], minutes(rng, 425, 470, 50), NOW + timedelta(minutes=1), 4)
    late_file = check_equal(model, lake)
    assert late_file.computed == 5


@pytest.mark.parametrize(
    ("function", "edit", "bad"),
    [
        (
            "outOfRangeRate",
            {"age": {"min_range": 50, "max_range": 60}},
            lambda row: not 50 <= row["age"] <= 60,
        ),
        (
            "newCategoryRate",
            {"region": {"categories": [{"value": "north"}]}},
            lambda row: row["region"] != "north",
        ),
    ],
)
def test_an_edit_of_a_range_or_categories_makes_new_partials(
    clock: Clock, function: str, edit: dict, bad
) -> None:
    # GIVEN a model whose age range is 18 to 90 and regions north and south, and an hour of its rows
    body = factories.binary_probability("edited")
    factories.attribute(body, "age").update(min_range=18, max_range=90)
    factories.attribute(body, "region").update(categories=[{"value": "north"}, {"value": "south"}])
    model = container.model_store().create(ModelSpec.model_validate(body))
    lake = Lake([model])
    rng = np.random.default_rng(5)
    lake.write(
        "f1", [f"e{i}" for i in range(400)], minutes(rng, 600, 660, 400), NOW - timedelta(minutes=30), 5
    )
    span = (DAY + timedelta(hours=10), DAY + timedelta(hours=11))
    inside = [r for r in lake.first_writes() if span[0] <= r["time"] < span[1]]
    column = next(iter(edit))
    null_rate = next(m for m in catalog.default_metrics(model) if m.name == f"Null Rate {column}")
    query = {"select": [{"function": function, "parameters": {"property": column}}]}
    metric = null_rate.model_copy(update={"name": f"{function} {column}", "query": query})

    def measured(current: Model) -> float | None:
        spec = catalog.partial_spec(metric, current, RunReads(lake_loader(container.lake_store(), current)))
        assert spec is not None
        [result] = PartialReads(container.lake_store(), current).measure(spec, [span])
        return catalog.measurement(result).value

    assert measured(model) == 0.0  # every value within the range, every region known

    # WHEN the range or the categories are edited (no type changes), THEN the partials follow: the
    # share of the hour's values now outside, counted by hand
    for name, changes in edit.items():
        factories.attribute(body, name).update(changes)
    edited = container.model_store().replace(model.id, ModelSpec.model_validate(body))
    assert measured(edited) == pytest.approx(sum(map(bad, inside)) / len(inside))
    assert 0 < sum(map(bad, inside)) < len(inside)


def rules_of(model: Model) -> None:
    """The metrics above as hourly rules, and a sliding one."""
    for index, (metric, values, filters) in enumerate(metrics_of(model)):
        evaluator().rules.put(
            Rule(
                id=f"{model.id}-rule-{index}",
                model_id=model.id,
                name=metric.name,
                metric_id=metric.id,
                bound="lower" if metric.is_drift or index == 1 else "upper",
                threshold={0: 0.5, 1: 0.2, 2: 0.45, 3: 0.05, 4: 100}[index],
                lookback_period=60 if index != 4 else 5,
                window_mode="sliding" if index == 2 else "aligned",
                metric_parameters=values,
                filters=filters,
                created_at=NOW,
            )
        )


def test_an_evaluator_run_decides_as_the_raw_path_and_reads_no_inference_file_twice(clock: Clock) -> None:
    # GIVEN two models with the same lake files (duplicates within and across files) and rules;
    # one evaluated from partials, the other from raw rows
    models = [new_model("churn"), new_model("churn-raw")]
    lake = Lake(models)
    rng = np.random.default_rng(5)
    a = [f"a{i}" for i in range(400)]
    lake.write("f1", a, minutes(rng, 540, 659, 400), NOW - timedelta(minutes=60), 1, again=5)
    lake.write("f2", [*a[:50], *[f"b{i}" for i in range(200)]], minutes(rng, 560, 661, 250), NOW, 2)
    for model in models:
        rules_of(model)
    gets: list[Counter[str]] = [Counter()]

    def count(params: dict, **_: object) -> None:
        gets[-1][params["Key"]] += 1

    with watching("GetObject", count):
        try:
            for run in range(3):  # WHEN the evaluator runs three times, 5 minutes apart
                clock.moment = NOW + timedelta(minutes=5 * run)
                gets.append(Counter())
                if run == 1:  # a late file lands between the first and second run
                    lake.write(
                        "f3", [*a[300:320], "z1"], minutes(rng, 545, 600, 21), NOW - timedelta(minutes=65), 3
                    )
                evaluator().partials = True
                with_partials = evaluator().evaluate_model(models[0].id)
                evaluator().partials = False
                raw = evaluator().evaluate_model(models[1].id)
                assert with_partials.errors == raw.errors == []
        finally:
            evaluator().partials = True

    # THEN each rule saved the same windows: values, rows, decisions
    for index in range(5):
        ours = evaluator().rules.windows(models[0].id, f"{models[0].id}-rule-{index}")
        theirs = evaluator().rules.windows(models[1].id, f"{models[1].id}-rule-{index}")
        assert len(ours) == len(theirs) > 0
        for mine, other in zip(
            sorted(ours, key=lambda r: r["window"]), sorted(theirs, key=lambda r: r["window"]), strict=True
        ):
            assert mine["window"] == other["window"]
            assert (mine["rows"], mine["decision"], mine["fired"]) == (
                other["rows"],
                other["decision"],
                other["fired"],
            )
            assert same(mine["value"], other["value"])
    # AND the same alerts (both the default rules' and these)
    alerts = [
        sorted(
            (a.rule_name, a.window_start, a.windows, a.metric_value) for a in evaluator().alerts.list(m.id)
        )
        for m in models
    ]
    assert [a[:3] for a in alerts[0]] == [a[:3] for a in alerts[1]], alerts
    assert all(same(a[3], b[3]) for a, b in zip(*alerts, strict=True))  # floats: to their last bits
    # AND the partial path read each inference file once in the run that made its partials, and
    # none in a run without new files
    prefix = f"inferences/model_id={models[0].id}/"
    read = [{key: n for key, n in run.items() if key.startswith(prefix)} for run in gets[1:]]
    assert len(read[0]) == 2 and all(n == 1 for n in read[0].values()), read[0]
    assert all(n == 1 for n in read[1].values()), read[1]  # the late file, and its partner f1
    assert read[2] == {}


def test_a_new_process_reads_the_days_fingerprints_from_block_objects(
    clock: Clock, monkeypatch: pytest.MonkeyPatch
) -> None:
    # GIVEN a day of six files (ids resent across them), their fingerprints written as a block by a
    # run once two files were in none
    monkeypatch.setattr(stored_partials, "BLOCK_FILES", 2)
    model = new_model()
    lake = Lake([model])
    rng = np.random.default_rng(9)
    for n in range(6):
        ids = [f"{n}-{i}" for i in range(80)] + ([f"{n - 1}-{i}" for i in range(10)] if n else [])
        lake.write(
            f"f{n}",
            ids,
            minutes(rng, 480 + 15 * n, 540 + 15 * n, len(ids)),
            NOW - timedelta(minutes=60 - n),
            n,
        )
    check_equal(model, lake)
    lake_keys = container.lake_store().keys(f"partials/model_id={model.id}/")
    assert len([k for k in lake_keys if "/prints-" in k]) == 1

    # WHEN a new process (its caches empty) measures after a file lands that resends ids of f5
    forget_process()
    lake.write("f6", [*(f"5-{i}" for i in range(20)), "new"], minutes(rng, 600, 620, 21), NOW, 6)
    gets: Counter[str] = Counter()

    def count(params: dict, **_: object) -> None:
        gets[params["Key"].split("/")[0]] += 1

    with watching("GetObject", count):
        reads = check_equal(model, lake)  # THEN values still equal the raw path's

    # AND it read the block and one index object (the new file's), not one per file; f6 and its
    # partner f5 have new partials
    assert gets["inference_ids"] == 1
    assert reads.computed == 2 * 5


def test_a_runs_new_partials_of_a_rule_are_one_object_and_a_superseded_one_in_it_is_not_counted(
    clock: Clock, monkeypatch: pytest.MonkeyPatch
) -> None:
    # GIVEN five files of a day, none measured yet, and at most 3 files' partials to an object
    monkeypatch.setattr(stored_partials, "BUNDLE_FILES", 3)
    model = new_model()
    lake = Lake([model])
    rng = np.random.default_rng(13)
    for n in range(5):
        lake.write(
            f"f{n}",
            [f"{n}-{i}" for i in range(120)],
            minutes(rng, 430, 640, 120),
            NOW - timedelta(minutes=50 - n),
            n,
        )
    puts: Counter[str] = Counter()

    def count(params: dict, **_: object) -> None:
        if params["Key"].startswith("partials/") and "/spec=" in params["Key"]:
            puts[params["Key"].split("/")[3]] += 1

    with watching("PutObject", count):
        # WHEN a run measures the 5 metrics' windows, THEN values equal the raw path's and each
        # metric's 5 new partials are stored in 2 objects (3 and 2 files), not 5
        assert check_equal(model, lake).computed == 5 * 5
        assert len(puts) == 5 and set(puts.values()) == {2}, puts

        # WHEN a file lands resending ids of f1 only (f1's partial in its object is superseded; f0's
        # and f2's beside it are not), and a new process measures (its caches empty)
        puts.clear()
        lake.write("f5", [*(f"1-{i}" for i in range(30)), "new"], minutes(rng, 500, 600, 31), NOW, 5)
        forget_process()
        reads = check_equal(model, lake)  # THEN values still equal: f1's old partial is not counted
    # AND only f1 and f5 were made, one object per metric
    assert reads.computed == 2 * 5
    assert set(puts.values()) == {1}


def test_partials_expired_by_the_lakes_lifecycle_are_made_again(clock: Clock) -> None:
    # GIVEN a day measured from partials, then every partial object gone (the bucket expires
    # partials/ after two weeks) and a new process (its caches empty)
    model = new_model()
    lake = Lake([model])
    rng = np.random.default_rng(11)
    lake.write(
        "f1", [f"a{i}" for i in range(200)], minutes(rng, 420, 600, 200), NOW - timedelta(minutes=40), 1
    )
    lake.write(
        "f2", [f"b{i}" for i in range(200)], minutes(rng, 450, 650, 200), NOW - timedelta(minutes=30), 2
    )
    assert check_equal(model, lake).computed == 2 * 5
    store = container.lake_store()
    assert store.delete_prefix(f"partials/model_id={model.id}/") > 0
    forget_process()

    # WHEN the windows are measured again, THEN each file's partials are made again from the lake
    # and the values still equal the raw path's
    assert check_equal(model, lake).computed == 2 * 5


def test_a_days_first_writes_are_resolved_once_with_each_file_decoded_once_and_two_at_a_time(
    clock: Clock, monkeypatch: pytest.MonkeyPatch
) -> None:
    # GIVEN a day of eight files, each resending ids of every earlier file (every file a partner of
    # all others), some ids twice within a file, and a run keeping no file's body (a 10 M-row day's
    # bodies past what a run keeps)
    monkeypatch.setattr(stored_partials, "OPENED_BYTES", 1)
    model = new_model()
    lake = Lake([model])
    rng = np.random.default_rng(13)
    for n in range(8):
        ids = [f"{n}-{i}" for i in range(60)] + [f"{m}-{i}" for m in range(n) for i in range(n, n + 4)]
        lake.write(
            f"f{n}",
            ids,
            minutes(rng, 420 + 10 * n, 600 + 10 * n, len(ids)),
            NOW - timedelta(minutes=60 - 5 * (n % 3)),  # a later file may be ingested first
            n,
            again=3,
        )
    decoded = [0]
    running = [0, 0]  # decodes now, most at once
    lock = threading.Lock()

    def decoding(function):
        def decode(*arguments, **named):
            with lock:
                running[0] += 1
                running[1] = max(running)
            try:
                time.sleep(0.02)  # long enough for other threads to start theirs
                return function(*arguments, **named)
            finally:
                with lock:
                    running[0] -= 1

        return decode

    identity = stored_partials.identity_columns

    def counted(file, names):
        decoded[0] += 1
        return identity(file, names)

    monkeypatch.setattr(stored_partials, "identity_columns", decoding(counted))
    monkeypatch.setattr(PartialReads, "_kept_rows", decoding(PartialReads._kept_rows))

    # WHEN windows are measured from partials, THEN they equal the raw path's and a count by hand
    reads = check_equal(model, lake)
    assert reads.computed == 8 * 5

    # AND each file's identity columns were decoded once in the run (not once per file and partner),
    # and never more than two files decoded at once
    assert decoded[0] == 8
    assert running[1] == stored_partials.DECODERS == 2


# -- bundles: stale runs, the earlier layout, key lengths, empty partials --------------------------


def specs_of(model: Model) -> list:
    """The specs of metrics_of(model), as check_equal makes them."""
    raw = RunReads(lake_loader(container.lake_store(), model))
    return [
        catalog.partial_spec(metric, model, raw, values, filters)
        for metric, values, filters in metrics_of(model)
    ]


def stored_objects(model: Model) -> list[str]:
    """The model's stored partial objects (no block objects), in LIST order."""
    return [k for k in container.lake_store().keys(f"partials/model_id={model.id}/") if "/spec=" in k]


def test_a_run_storing_partials_other_objects_already_hold_counts_each_file_once(clock: Clock) -> None:
    # GIVEN a day of three files (one with rows in no window measured), and a run A that lists the day
    # (measuring one metric) before a file f3 lands
    model = new_model()
    lake = Lake([model])
    rng = np.random.default_rng(17)
    lake.write(
        "f1", [f"a{i}" for i in range(200)], minutes(rng, 430, 640, 200), NOW - timedelta(minutes=50), 1
    )
    lake.write(
        "f2", [f"b{i}" for i in range(150)], minutes(rng, 450, 660, 150), NOW - timedelta(minutes=45), 2
    )
    lake.write("f9", [f"z{i}" for i in range(60)], minutes(rng, 60, 120, 60), NOW - timedelta(minutes=44), 9)
    first, *others = specs_of(model)
    stale = PartialReads(container.lake_store(), model)
    stale.measure(first, windows())
    lake.write(
        "f3", [f"c{i}" for i in range(100)], minutes(rng, 500, 600, 100), NOW - timedelta(minutes=40), 3
    )

    # WHEN a run B then measures every metric (storing f1, f2, f3 and f9's partials of the other four in
    # one object each), and A, from its listing, stores f1, f2 and f9's of those four again (other objects)
    assert check_equal(model, lake).computed == 1 + 4 * 4
    for spec in others:
        stale.measure(spec, windows())
    # f1's partial of each of the four is in two objects (of the first metric, in one)
    holding = Counter(k.split("/")[3] for k in stored_objects(model) if "f1-00000." in k)
    assert sorted(holding.values()) == [1, 2, 2, 2, 2], holding

    # THEN a later run reads only stored partials and counts each file once (the raw path's values), in
    # this process (the objects kept) and in a new one
    assert check_equal(model, lake).computed == 0
    forget_process()
    assert check_equal(model, lake).computed == 0

    # AND once a file resends ids of f2 (f2's partial in both objects superseded), only f2 and it are made
    lake.write("f4", [*(f"b{i}" for i in range(20)), "new"], minutes(rng, 520, 560, 21), NOW, 4)
    forget_process()
    assert check_equal(model, lake).computed == 2 * 5


def as_earlier_layout(model: Model) -> list[str]:
    """The model's stored partials as the layout before bundles wrote them: an object a file, its key
    `<name>.<version>.<first>-<last>.parquet`, its table the spec's partial alone (no MEMBER column):
    made one file to an object, the column then dropped. Returns their keys."""
    store = container.lake_store()
    keys = stored_objects(model)
    for key in keys:
        body = store.client.get_object(Bucket=store.bucket, Key=key)["Body"].read()
        table = pq.read_table(pa.BufferReader(body))
        assert "+" not in key.rsplit("/", 1)[1] and stored_partials.MEMBER in table.column_names
        sink = pa.BufferOutputStream()
        pq.write_table(table.drop_columns([stored_partials.MEMBER]), sink, compression="zstd")
        store.client.put_object(Bucket=store.bucket, Key=key, Body=sink.getvalue().to_pybytes())
    forget_process()
    return keys


def test_a_day_stored_in_the_earlier_one_file_layout_is_read_as_it_is_after_the_upgrade(
    clock: Clock, monkeypatch: pytest.MonkeyPatch
) -> None:
    # GIVEN a day of three files (f2 resending ids of f1) whose partials were stored by the earlier
    # release, one object a file without the MEMBER column, and a new process of this release
    model = new_model()
    lake = Lake([model])
    rng = np.random.default_rng(19)
    a = [f"a{i}" for i in range(250)]
    lake.write("f1", a, minutes(rng, 420, 620, 250), NOW - timedelta(minutes=60), 1, again=4)
    lake.write(
        "f2",
        [*a[:40], *(f"b{i}" for i in range(150))],
        minutes(rng, 450, 650, 190),
        NOW - timedelta(minutes=50),
        2,
    )
    lake.write(
        "f3", [f"c{i}" for i in range(120)], minutes(rng, 480, 640, 120), NOW - timedelta(minutes=40), 3
    )
    with monkeypatch.context() as earlier:
        earlier.setattr(stored_partials, "BUNDLE_FILES", 1)
        assert check_equal(model, lake).computed == 3 * 5
    old = as_earlier_layout(model)
    assert len(old) == 3 * 5

    # WHEN it measures, THEN it reads those objects (makes none) and the values equal the raw path's
    reads = check_equal(model, lake)
    assert (reads.computed, reads.read) == (0, 3 * 5)

    # AND when a file lands resending ids of f3, f3's and its partials are made (one object a metric)
    # while f1's and f2's are still read from the earlier objects
    lake.write("f4", [*(f"c{i}" for i in range(30)), "new"], minutes(rng, 500, 560, 31), NOW, 4)
    forget_process()
    reads = check_equal(model, lake)
    assert reads.computed == 2 * 5
    made = [k for k in stored_objects(model) if k not in old]
    assert len(made) == 5 and all(k.rsplit("/", 1)[1].count("+") == 1 for k in made), made


def test_partial_keys_stay_within_s3s_1024_bytes_with_long_file_names(clock: Clock) -> None:
    # GIVEN a day of four files with 306-character names (two fit an object's key) and one whose
    # partial alone makes a key of 1,024 bytes (S3's most; moto takes longer ones, so they are counted)
    model = new_model()
    lake = Lake([model])
    rng = np.random.default_rng(23)
    digest = specs_of(model)[0].digest
    fixed = len(f"partials/model_id={model.id}/date={DAY.date()}/spec={digest}/.0000-1439.parquet")
    longest = "m" * (1024 - fixed - len("-00000.") - 16)
    for n, name in enumerate([*(f"l{n}" + "x" * 298 for n in range(4)), longest]):
        ids = [f"{n}-{i}" for i in range(60)]
        lake.write(name, ids, minutes(rng, 430, 640, 60), NOW - timedelta(minutes=50 - n), n)
    puts: Counter[str] = Counter()
    lengths: list[int] = []

    def count(params: dict, **_: object) -> None:
        if "/spec=" in params["Key"]:
            puts[params["Key"].split("/")[3]] += 1
            lengths.append(len(params["Key"].encode()))

    with watching("PutObject", count):
        # WHEN windows are measured, THEN they equal the raw path's
        assert check_equal(model, lake).computed == 5 * 5
    # AND every key is within 1,024 bytes: each metric's partials in 3 objects (2, 2 and the longest alone)
    assert max(lengths) == 1024 and set(puts.values()) == {3}, (lengths, puts)
    # AND a new process reads them all back
    forget_process()
    assert check_equal(model, lake).computed == 0


def test_empty_partials_in_an_object_and_objects_of_empty_partials_are_read_as_no_rows(clock: Clock) -> None:
    # GIVEN a day whose files include one of three rows, all of region south (the average's rule
    # filter keeps region north: its partial of that metric has no rows), stored with others' partials
    model = new_model()
    lake = Lake([model])
    rng = np.random.default_rng(29)
    a = [f"a{i}" for i in range(200)]
    lake.write("f1", a, minutes(rng, 430, 640, 200), NOW - timedelta(minutes=50), 1)
    lake.write(
        "f2", [f"b{i}" for i in range(150)], minutes(rng, 450, 660, 150), NOW - timedelta(minutes=48), 2
    )
    south = 25456  # a seed giving Lake.write's three rows region south
    lake.write("fs", ["s0", "s1", "s2"], np.array([500.0, 505.0, 510.0]), NOW - timedelta(minutes=46), south)
    assert {r["region"] for r in lake.rows if r["file"] == "fs"} == {"south"}
    assert check_equal(model, lake).computed == 3 * 5

    # WHEN a file lands all of whose rows lose to f1's earlier writes (its partials have no rows,
    # stored beside f1's new ones), THEN values equal the raw path's in a new process
    lake.write("fl", a[50:90], minutes(rng, 500, 520, 40), NOW - timedelta(minutes=40), 5)
    forget_process()
    assert check_equal(model, lake).computed == 2 * 5

    # WHEN another all-south file lands alone (its partial of the average stored as an object of no
    # rows), THEN values still equal, and a new process makes nothing
    lake.write("ft", ["t0", "t1", "t2"], np.array([600.0, 601.0, 602.0]), NOW - timedelta(minutes=30), south)
    assert check_equal(model, lake).computed == 5
    assert [k for k in stored_objects(model) if k.endswith(".empty.parquet") and "/ft-" in k]
    forget_process()
    assert check_equal(model, lake).computed == 0


def test_partials_made_at_once_are_bundled_by_their_minutes_so_a_window_gets_few_objects(
    clock: Clock, monkeypatch: pytest.MonkeyPatch
) -> None:
    # GIVEN a day of 36 files of 10 minutes each (06:00 to 12:00; their names, digests in the lake, in
    # no order of time), none measured yet by a rule (a new rule: every file's partial made in one
    # run), at most 3 files' partials to an object
    monkeypatch.setattr(stored_partials, "BUNDLE_FILES", 3)
    model = new_model()
    lake = Lake([model])
    rng = np.random.default_rng(31)
    for n in range(36):
        name = uuid.UUID(int=int(rng.integers(2**62))).hex  # names in no order of time
        ids = [f"{n}-{i}" for i in range(20)]
        lake.write(name, ids, minutes(rng, 360 + 10 * n, 369.9 + 10 * n, 20), NOW - timedelta(minutes=90), n)
    assert check_equal(model, lake).computed == 36 * 5

    # WHEN a new process measures the hour from 10:00 (6 files' rows)
    forget_process()
    gets: list[str] = []

    def count(params: dict, **_: object) -> None:
        if "/spec=" in params["Key"]:
            gets.append(params["Key"])

    hour = (DAY + timedelta(hours=10), DAY + timedelta(hours=11))
    inference_count = specs_of(model)[-1]
    with watching("GetObject", count):
        [result] = PartialReads(container.lake_store(), model).measure(inference_count, [hour])

    # THEN it counts the hour's rows, reading the 2 objects holding its files, not most of the 12
    assert result.rows == len([r for r in lake.first_writes() if hour[0] <= r["time"] < hour[1]]) == 6 * 20
    assert len(gets) == 2, gets
