"""Studies from a TOML spec on a real dask.distributed LocalCluster (two worker processes on
127.0.0.1): the distributed result equals the serial study, a worker killed mid-study changes
nothing, a resumed study writes only its missing chunks, a failing chunk is reported without
losing the others, a bad spec is one clear error naming its key, and the networks a study keeps
are kept out of the garbage collector's scans.

The feeder is a six-bus LV feeder with loads, PV and a battery (a pandapower JSON file), over
three days, each day cleared and AC-checked in about half a second."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pandas as pd
import pytest

from feederdao.domain.clearing import ClearingOptions
from feederdao.errors import ParameterError
from feederdao.workflows.studies.dataset import read_manifest, read_study
from feederdao.workflows.studies.execute import (
    PLUGIN,
    ChunkProgress,
    StudyStopped,
    local_cluster,
    run_spec,
)
from feederdao.workflows.studies.spec import StudySpecError, load_spec
from feederdao.workflows.studies.summary import study_plots
from feederdao.workflows.study import run_study

SIMBENCH = "1-LV-rural1--2-sw"
FEEDER = "tiny"
DAYS = 3
#: what the distributed run may differ from the serial one by (EUR/MWh): the same linear
#: programs are solved, so only the solver's rounding; the storage state a warm-up day gives a
#: chunk's start is the one the serial run carries (measured below)
TOLERANCE_EUR_PER_MWH = 1e-6

SPEC = """\
[study]
name = "t"
feeders = ["{feeder}"]
start = "2016-06-21"
days = {days}
chunk_days = 1
warmup_days = 1

[outputs]
dir = "{out}"
tables = ["prices", "dispatch", "periods"]
"""


def write_spec(
    folder: Path, out: str, feeder: str = "tiny.json", days: int = DAYS, extra: str = ""
) -> Path:
    """A spec in ``folder`` beside the feeder file ``tiny.json``."""
    folder.mkdir(parents=True, exist_ok=True)
    tiny(folder / "tiny.json")
    path = folder / "study.toml"
    path.write_text(SPEC.format(feeder=feeder, days=days, out=out) + extra)
    return path


def tiny(path: Path) -> Path:
    """Six buses on a 0.4 kV line, three loads, two PV systems and a 50 kWh battery."""
    import pandapower as pp

    net = pp.create_empty_network(name="tiny")
    b = [pp.create_bus(net, vn_kv=0.4, name=f"bus {k}") for k in range(6)]
    pp.create_ext_grid(net, b[0])
    for k in range(1, 6):
        pp.create_line_from_parameters(
            net,
            b[k - 1],
            b[k],
            0.1,
            r_ohm_per_km=0.3,
            x_ohm_per_km=0.08,
            c_nf_per_km=0,
            max_i_ka=0.25,
        )
    for k in (2, 3, 5):
        pp.create_load(net, b[k], p_mw=0.03, q_mvar=0.01)
    for k in (3, 4):
        pp.create_sgen(net, b[k], p_mw=0.04, type="PV")
    pp.create_storage(net, b[5], p_mw=0, max_e_mwh=0.05, sn_mva=0.02, max_p_mw=0.02, min_p_mw=-0.02)
    pp.to_json(net, str(path))
    return path


@pytest.fixture(scope="module")
def cluster() -> Iterator[Any]:
    """A LocalCluster of two worker processes on loopback, closed whatever the tests do."""
    c = local_cluster(2)
    try:
        yield c
    finally:
        c.close()


@pytest.fixture(scope="module")
def serial(tmp_path_factory: pytest.TempPathFactory) -> pd.DataFrame:
    """The serial study of the same days (feederdao.run_study: one process, storage carried
    from day to day)."""
    study = run_study(tiny(tmp_path_factory.mktemp("serial") / "tiny.json"), DAYS)
    assert all(d.result.ac_check.performed for d in study.days)
    return study.prices


@pytest.fixture(scope="module")
def distributed(cluster: Any, tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("dist")
    run = run_spec(write_spec(folder, "out"), scheduler=cluster.scheduler_address)
    assert not run.failed and len(run.written) == DAYS
    return folder / "out"


def _dlmp(frame: pd.DataFrame) -> pd.Series:
    s = frame["dlmp_eur_per_mwh"]
    if "case" in s.index.names:
        s = s.droplevel("case")
    return s.sort_index()


def test_distributed_equals_serial(serial: pd.DataFrame, distributed: Path) -> None:
    got = _dlmp(read_study(distributed, "prices"))
    want = _dlmp(serial)
    assert got.index.equals(want.index)
    gap = float((got - want).abs().max())
    assert gap <= TOLERANCE_EUR_PER_MWH, gap
    # the chunks after the first started from a warm-up day: the storage they dispatched is
    # the serial run's
    disp = read_study(distributed, "dispatch")
    storage = disp[disp["kind"] == "storage"]["p_mw"].droplevel("case").sort_index()
    assert len(storage) == DAYS * 96
    assert float(storage.abs().max()) > 1e-4  # the battery does work
    manifest = read_manifest(distributed)
    assert sorted(manifest["chunks"]) == [f"{FEEDER}__base/{k}" for k in range(DAYS)]
    assert [manifest["chunks"][f"{FEEDER}__base/{k}"]["warmup_days"] for k in range(DAYS)] == [
        0,
        1,
        1,
    ]
    # the study's plots: duration curves, then per case the day × hour map and the band
    drawn = study_plots(distributed)
    assert [p.name for p in drawn] == [
        "dlmp_duration.png",
        f"{FEEDER}__base__dlmp_day_hour.png",
        f"{FEEDER}__base__voltage_band.png",
    ]
    assert all(p.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" for p in drawn)
    # one call from pandas: the hive-partitioned dataset with its case and chunk columns
    plain = pd.read_parquet(distributed / "prices")
    assert {"case", "chunk", "time", "bus", "dlmp_eur_per_mwh"} <= set(plain.columns)
    assert len(plain) == len(got)


def test_storage_free_at_midnight_is_chunked_exactly_after_one_warm_up_day(
    cluster: Any, tmp_path: Path
) -> None:
    """With ``storage_end = "free"`` a day's end state is the optimiser's choice and the next
    day starts from it, so a chunk's start state is not the devices' initial one. One warm-up
    day sets it: the chunked study equals the serial one; without the warm-up it does not."""
    free = '\n[clearing]\nstorage_end = "free"\n'
    study = run_study(
        tiny(tmp_path / "serial.json"), DAYS, options=ClearingOptions(storage_end="free")
    )
    want = _dlmp(study.prices)
    # the battery ends each day on its floor, not where it started (50 %)
    assert [round(d.storage_soc_percent["storage:0"], 6) for d in study.days] == [10.0] * DAYS
    gaps = {}
    for warmup in (1, 0):
        folder = tmp_path / f"warmup{warmup}"
        spec = write_spec(folder, "out", extra=free)
        spec.write_text(spec.read_text().replace("warmup_days = 1", f"warmup_days = {warmup}"))
        run = run_spec(spec, scheduler=cluster.scheduler_address)
        assert not run.failed and len(run.written) == DAYS
        got = _dlmp(read_study(folder / "out", "prices"))
        assert got.index.equals(want.index)
        gaps[warmup] = float((got - want).abs().max())
    assert gaps[1] <= TOLERANCE_EUR_PER_MWH, gaps
    assert gaps[0] > 1.0, gaps  # starting a chunk from the initial state is wrong


def test_each_worker_solves_on_its_own_thread(cluster: Any, distributed: Path) -> None:
    """Two one-thread workers on two cores: each clearing's solver uses its worker's one
    thread, not two (two workers with two solver threads each competed for the cores and
    were no faster than one worker). A spec cannot set it. The workers' stack sampler, which
    cost a clearing-day 12 %, is off."""
    import dask
    from distributed import Client

    with Client(cluster.scheduler_address) as client:  # type: ignore[no-untyped-call]
        threads = client.run(lambda dask_worker: dask_worker.plugins[PLUGIN].cache.threads)
        sampling = client.run(lambda: dask.config.get("distributed.worker.profile.enabled"))
    assert sorted(threads.values()) == [1, 1]
    assert list(sampling.values()) == [False, False]
    with pytest.raises(ParameterError, match="threads must be a positive whole number, not 0"):
        ClearingOptions(threads=0)


def test_a_study_keeps_its_networks_out_of_the_collectors_sight(
    cluster: Any, distributed: Path, tmp_path: Path
) -> None:
    """A serial study, and every worker once it has opened a network, take what they keep
    out of the cyclic garbage collector's sight: its full collections scanned the networks'
    objects again and again."""
    import gc

    from distributed import Client

    gc.unfreeze()
    assert gc.get_freeze_count() == 0
    run_study(tiny(tmp_path / "tiny.json"), 1)
    assert gc.get_freeze_count() > 10_000

    def opened_and_frozen(dask_worker: Any) -> tuple[int, int]:
        import gc

        return dask_worker.plugins[PLUGIN].cache.opened, gc.get_freeze_count()

    with Client(cluster.scheduler_address) as client:  # type: ignore[no-untyped-call]
        frozen = client.run(opened_and_frozen)
    assert any(opened for opened, _ in frozen.values())
    assert all(count > 10_000 for opened, count in frozen.values() if opened), frozen


def _kill_busy_worker(cluster: Any) -> None:
    from distributed import Client

    with Client(cluster.scheduler_address) as client:  # type: ignore[no-untyped-call]
        busy = [w for w, tasks in client.processing().items() if tasks]
        pids = client.run(os.getpid)
        os.kill(pids[busy[0] if busy else next(iter(pids))], signal.SIGKILL)


def test_a_worker_killed_mid_study_changes_nothing(
    cluster: Any, distributed: Path, tmp_path: Path
) -> None:
    killed: list[str] = []

    def on_chunk(p: ChunkProgress) -> None:
        if not killed:  # the first chunk is done, the others are in flight: kill a busy worker
            _kill_busy_worker(cluster)
            killed.append(p.key)

    run = run_spec(
        write_spec(tmp_path, "out"), scheduler=cluster.scheduler_address, progress=on_chunk
    )
    assert killed and not run.failed and len(run.written) == DAYS
    got = _dlmp(read_study(tmp_path / "out", "prices"))
    want = _dlmp(read_study(distributed, "prices"))
    assert float((got - want).abs().max()) <= TOLERANCE_EUR_PER_MWH
    cluster.wait_for_workers(2)


def test_an_interrupted_study_resumed_writes_only_the_missing_chunks(
    cluster: Any, distributed: Path, tmp_path: Path
) -> None:
    spec = write_spec(tmp_path, "out")

    def stop(p: ChunkProgress) -> None:
        raise KeyboardInterrupt  # Ctrl-C after the first finished chunk

    with pytest.raises(StudyStopped) as stopped:
        run_spec(spec, scheduler=cluster.scheduler_address, progress=stop)
    kept = dict(read_manifest(tmp_path / "out")["chunks"])
    assert len(kept) == stopped.value.run.finished >= 1
    mtimes = {
        f: (tmp_path / "out" / f).stat().st_mtime_ns for r in kept.values() for f in r["files"]
    }
    resumed = run_spec(spec, scheduler=cluster.scheduler_address, resume=True)
    assert sorted(resumed.skipped) == sorted(kept)
    assert sorted(resumed.written) == sorted(
        set(read_manifest(tmp_path / "out")["chunks"]) - set(kept)
    )
    assert len(resumed.skipped) + len(resumed.written) == DAYS
    assert {f: (tmp_path / "out" / f).stat().st_mtime_ns for f in mtimes} == mtimes
    got = _dlmp(read_study(tmp_path / "out", "prices"))
    assert (
        float((got - _dlmp(read_study(distributed, "prices"))).abs().max()) <= TOLERANCE_EUR_PER_MWH
    )
    # a second resume has nothing left to do; without --resume the folder is refused
    again = run_spec(spec, scheduler=cluster.scheduler_address, resume=True)
    assert again.written == [] and len(again.skipped) == DAYS
    with pytest.raises(ParameterError, match="already holds a study"):
        run_spec(spec, scheduler=cluster.scheduler_address)


def test_a_failing_chunk_is_reported_and_the_others_are_kept(cluster: Any, tmp_path: Path) -> None:
    broken = tmp_path / "broken.json"
    broken.write_text('{"not": "a pandapower net"}')
    spec = write_spec(tmp_path, "out", feeder='tiny.json", "broken.json', days=1)
    run = run_spec(spec, scheduler=cluster.scheduler_address, retries=1)
    assert list(run.failed) == ["broken__base/0"]
    assert "broken.json" in run.failed["broken__base/0"]
    assert run.written == [f"{FEEDER}__base/0"]
    manifest = read_manifest(tmp_path / "out")
    assert list(manifest["failed"]) == ["broken__base/0"]
    summary = run.summary()
    assert list(summary.index) == [f"{FEEDER}__base"]
    assert summary.loc[f"{FEEDER}__base", "ac_check"] == "all feasible"
    assert summary.loc[f"{FEEDER}__base", "days"] == 1


@pytest.mark.parametrize(
    ("text", "words"),
    [
        ("[study]\nfeeders = ['case33bw']\n", "study.start is missing"),
        ("[study]\nfeeders = []\nstart = '2016-06-21'\n", "study.feeders must be a non-empty list"),
        (
            "[study]\nfeeders = ['case33bw']\nstart = '2016-02-30'\n",
            "study.start 2016-02-30 is not a date: February 2016 has 29 days",
        ),
        (
            "[study]\nfeeders = ['case33bw']\nstart = '2016-06-21'\ndays = 400\n",
            "study.days = 400 must be between 1 and 366",
        ),
        (
            "[study]\nfeeders = ['case33bw']\nstart = '2016-06-21'\nchunk = 2\n",
            "study.chunk is not a known key",
        ),
        (
            "[study]\nfeeders = ['case33bw']\nstart = '2016-06-21'\n"
            "[[scenarios]]\nname = 'a'\npv_scale = -1\n",
            "scenarios[0].pv_scale = -1 must be a finite number of at least 0",
        ),
        (
            "[study]\nfeeders = ['case33bw']\nstart = '2016-06-21'\n"
            "[[scenarios]]\nname = 'future'\nsimbench_scenario = 2\n",
            "scenarios[0].simbench_scenario needs SimBench codes as feeders; 'case33bw'",
        ),
        (
            "[study]\nfeeders = ['case33bw']\nstart = '2016-06-21'\n"
            "[parameters]\nv_min_pu = [0.9, 1.2]\n",
            "parameters.v_min_pu = 1.2: voltage band",
        ),
        (
            "[study]\nfeeders = ['case33bw']\nstart = '2016-06-21'\n[clearing]\nelastic = 1\n",
            "clearing.elastic must be true or false, not 1",
        ),
        (
            "[study]\nfeeders = ['case33bw']\nstart = '2016-06-21'\n"
            "[clearing]\nstorage_end = 'empty'\n",
            "clearing.storage_end must be 'at-least-start' or 'equal-start' or 'free', not 'empty'",
        ),
        (
            "[study]\nfeeders = ['case33bw']\nstart = '2016-06-21'\n"
            "[outputs]\ntables = ['price']\n",
            "outputs.tables names 'price', not one of prices",
        ),
        (
            "[study]\nfeeders = ['case33bw', 'case34']\nstart = '2016-06-21'\n",
            "study.feeders[1]: unknown network 'case34'",
        ),
        (
            "[study]\nfeeders = ['grid.json']\nstart = '2016-06-21'\n",
            "study.feeders[0]: network file",
        ),
        ("[study\n", "is not valid TOML"),
        ("[market]\n", "[market] is not a section of a study spec"),
    ],
)
def test_a_bad_spec_is_one_clear_error(tmp_path: Path, text: str, words: str) -> None:
    path = tmp_path / "bad.toml"
    path.write_text(text)
    with pytest.raises(StudySpecError) as exc:
        load_spec(path)
    assert words in str(exc.value)
    assert str(exc.value).startswith(str(path))


def test_a_sweep_and_scenarios_make_the_cases(tmp_path: Path) -> None:
    path = write_spec(
        tmp_path,
        "out",
        feeder=SIMBENCH,
        extra="[[scenarios]]\nname = 'today'\nsimbench_scenario = 0\n"
        "[[scenarios]]\nname = 'future'\nsimbench_scenario = 2\npv_scale = 1.5\n"
        "[parameters]\nv_max_pu = 1.06\nnetwork_fee_eur_per_mwh = [0, 5]\n",
    )
    spec = load_spec(path)
    cases = spec.cases()
    assert [c.case_id for c in cases] == [
        f"{SIMBENCH}__today__p0",
        f"{SIMBENCH}__today__p1",
        f"{SIMBENCH}__future__p0",
        f"{SIMBENCH}__future__p1",
    ]
    assert cases[0].net == "1-LV-rural1--0-sw" and cases[2].net == SIMBENCH
    assert cases[1].parameters == {"v_max_pu": 1.06, "network_fee_eur_per_mwh": 5.0}


def test_the_cli_refuses_a_bad_spec_in_one_line(tmp_path: Path) -> None:
    path = tmp_path / "bad.toml"
    path.write_text("[study]\nfeeders = ['case33bw']\nstart = '2016-06-21'\nwarmup_days = 9\n")
    done = subprocess.run(
        [sys.executable, "-m", "feederdao.cli.main", "study", "run", str(path)],
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.returncode == 2
    lines = [ln for ln in done.stderr.splitlines() if ln.strip()]
    assert lines == [f"error: {path}: study.warmup_days = 9 must be between 0 and 7"], done.stderr


def test_a_manifest_line_cut_short_by_a_crash_only_loses_that_chunk(tmp_path: Path) -> None:
    from feederdao.workflows.studies.dataset import Manifest

    m = Manifest.open(tmp_path, "t", resume=False)
    m.add("a/0", {"digest": "x", "files": []})
    m.add("a/1", {"digest": "y", "files": []})
    m.fail("b/0", "ValueError: no")
    text = (tmp_path / "manifest.jsonl").read_text()
    (tmp_path / "manifest.jsonl").write_text(text + '{"event": "done", "key": "a/2", "rec')
    back = read_manifest(tmp_path)
    assert sorted(back["chunks"]) == ["a/0", "a/1"] and back["failed"] == {"b/0": "ValueError: no"}
    again = Manifest.open(tmp_path, "t", resume=True)
    assert again.done("a/1", "y", tmp_path) and not again.done("a/1", "z", tmp_path)
    again.add("a/2", {"digest": "w", "files": []})  # appended after the broken line, readable
    assert sorted(read_manifest(tmp_path)["chunks"]) == ["a/0", "a/1", "a/2"]
