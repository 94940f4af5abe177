"""A study's dataset in one table: a row per case."""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from feederdao.workflows.studies.dataset import read_manifest, read_study

#: the summary's columns, in order
COLUMNS = (
    "days",
    "bought_mwh",
    "sold_mwh",
    "dlmp_mean_eur_per_mwh",
    "dlmp_min_eur_per_mwh",
    "dlmp_max_eur_per_mwh",
    "congestion_hours",
    "voltage_limit_hours",
    "curtailment_mwh",
    "shed_load_mwh",
    "ac_feasible_days",
    "ac_check",
)


def study_summary(out: Path | str) -> pd.DataFrame:
    """One row per case from the dataset's ``days`` table: days finished, energy traded
    (bought and sold, MWh), the mean and extreme DLMPs, the hours a thermal limit
    (congestion) or a voltage limit priced some bus, curtailed PV and shed load (MWh), and the
    AC check (``all feasible`` or how many days were not)."""
    days = read_study(out, "days")
    g = days.groupby(level="case", sort=True)
    frame = pd.DataFrame(
        {
            "days": g.size(),
            "bought_mwh": g["bought_mwh"].sum(),
            "sold_mwh": g["sold_mwh"].sum(),
            "dlmp_mean_eur_per_mwh": g["dlmp_mean_eur_per_mwh"].mean(),
            "dlmp_min_eur_per_mwh": g["dlmp_min_eur_per_mwh"].min(),
            "dlmp_max_eur_per_mwh": g["dlmp_max_eur_per_mwh"].max(),
            "congestion_hours": g["congestion_hours"].sum(),
            "voltage_limit_hours": g["voltage_limit_hours"].sum(),
            "curtailment_mwh": g["curtailment_mwh"].sum(),
            "shed_load_mwh": g["shed_load_mwh"].sum(),
            "ac_feasible_days": g["ac_feasible"].sum().astype(int),
        }
    )
    checked = g["ac_checked"].sum().astype(int)
    frame["ac_check"] = [
        "not checked"
        if c == 0
        else ("all feasible" if f == c else f"{c - f} of {c} day(s) with violations")
        for c, f in zip(checked, frame["ac_feasible_days"], strict=True)
    ]
    failed = read_manifest(out).get("failed", {})
    if failed:
        cases = sorted({k.split("/")[0] for k in failed})
        for case in cases:
            n = sum(1 for k in failed if k.split("/")[0] == case)
            if case in frame.index:
                frame.loc[case, "ac_check"] = f"{frame.loc[case, 'ac_check']}; {n} chunk(s) failed"
    return frame[list(COLUMNS)]


def study_plots(out: Path | str) -> list[Path]:
    """PNG plots of a study's dataset into ``<out>/plots``: the DLMP duration curves of every
    case in one figure; for each case the mean DLMP per day and hour and the feeder's voltage
    band over the study (from the ``periods`` table)."""
    import numpy as np

    from feederdao.domain.params import GridParameters
    from feederdao.errors import ParameterError
    from feederdao.report import plots

    manifest = read_manifest(out)
    if not any(
        f.startswith("periods/") for r in manifest["chunks"].values() for f in r.get("files", [])
    ):
        raise ParameterError(f"{str(out)!r}: the plots need the periods table (outputs.tables)")
    periods = read_study(out, "periods")
    folder = Path(out) / "plots"
    folder.mkdir(exist_ok=True)
    curves: dict[str, np.ndarray] = {}
    files = []
    bands = {r["case"]: r.get("parameters", {}) for r in manifest["chunks"].values()}
    for case, frame in periods.groupby(level="case", sort=True):
        frame = frame.droplevel("case").sort_index()
        curves[str(case)] = frame["dlmp_mean_eur_per_mwh"].to_numpy()
        times = pd.DatetimeIndex(frame.index)
        local = pd.DataFrame(
            {
                "day": times.strftime("%Y-%m-%d"),
                "hour": times.hour,
                "dlmp": frame["dlmp_mean_eur_per_mwh"].to_numpy(),
            }
        )
        grid = local.pivot_table(index="day", columns="hour", values="dlmp", aggfunc="mean")
        grid = grid.reindex(columns=range(24))
        files.append(
            plots.day_hour_heatmap(
                folder / f"{case}__dlmp_day_hour.png",
                [str(d) for d in grid.index],
                grid.to_numpy(),
                f"{case}: mean DLMP per day and hour",
                "mean DLMP (EUR/MWh)",
            )
        )
        band = GridParameters(**bands.get(str(case), {}))
        vm = np.column_stack([frame["vm_min_pu"].to_numpy(), frame["vm_max_pu"].to_numpy()])
        files.append(
            plots.voltage_band(
                folder / f"{case}__voltage_band.png",
                list(times.to_pydatetime()),
                vm,
                band.v_min_pu,
                band.v_max_pu,
            )
        )
    files.insert(0, plots.dlmp_duration(folder / "dlmp_duration.png", curves))
    return files
