"""The Co-Prop paper's published numbers, transcribed from its text (reference/paper-coprop.txt, §4 and App. A).

These are the ONLY typed-in numbers in coprop's reports. Every value carries the table it comes from, the data
it was measured on (AVSBench S4 / M3 = MS3 / AVSS) and the backbone, and every column built from it is named
``paper: ...`` so it can never be mistaken for a coprop measurement. J is M_J (mIoU for AVSS), F is M_F, in %.

Notes on the source:
* Table 2 says "M3 and S4 datasets with Pvt-v2 backbone". Tables 4, 5 and 6 do not name a backbone; their
  Co-Prop rows repeat the PVT-v2 numbers of Tables 1 / 2a, so they are labelled "PVT-v2 (not stated; matches
  the PVT-v2 rows)".
* Table 5's AOT row gives M3 J 62.97 where Table 2a's matching row (KPF+RCPG, no AIP) gives 61.97 with every
  other number equal; both are transcribed as printed.
* Table 6 is captioned "text-guided and audio-guided" in the paper, but its rows (all / key / normal frames)
  belong to appendix A.3; it is transcribed under that meaning.
* Fig. 3 (Alignment Rate on MOC) and Fig. 4 (with / without Co-Prop) are bar charts whose values are not
  printed in the text, so no paper numbers exist for them here.
"""
from __future__ import annotations

import pandas as pd

AVSBENCH = {"S4": "AVSBench S4 (single source)", "M3": "AVSBench MS3 (multi source)", "AVSS": "AVSBench AVSS"}
PVT_NOT_STATED = "PVT-v2 (not stated; matches the PVT-v2 rows)"

# Table 1: method -> backbone -> (S4 J, S4 F, M3 J, M3 F, AVSS J, AVSS F); None = '-' in the paper.
TABLE1 = {
    "TPAVI": {"ResNet": (72.8, 84.8, 47.9, 57.8, 20.2, 25.2), "PVT-v2": (78.7, 87.9, 54.0, 64.5, 29.8, 35.2)},
    "CATR": {"ResNet": (74.8, 86.6, 52.8, 65.3, 23.4, 28.6), "PVT-v2": (81.4, 89.6, 59.0, 70.0, 32.8, 38.5)},
    "AuTR": {"ResNet": (75.0, 85.2, 49.4, 61.2, None, None), "PVT-v2": (80.4, 89.1, 56.2, 67.2, None, None)},
    "AQFormer": {"ResNet": (77.0, 86.4, 55.7, 66.9, None, None), "PVT-v2": (81.6, 89.4, 61.1, 72.1, None, None)},
    "BAVS": {"ResNet": (78.0, 85.3, 50.2, 62.4, 24.7, 29.6), "PVT-v2": (82.0, 88.6, 58.6, 65.5, 32.6, 36.4)},
    "AVS-BiGen": {"ResNet": (74.1, 85.4, 45.0, 56.8, None, None), "PVT-v2": (81.7, 90.4, 55.1, 66.8, None, None)},
    "MoCA": {"ResNet": (None,) * 6, "PVT-v2": (68.0, 79.0, 57.0, 62.0, 31.0, 33.0)},
    "AVSegFormer": {"ResNet": (76.4, 86.7, 53.8, 65.6, 26.6, 31.5), "PVT-v2": (82.1, 89.9, 58.36, 69.3, 37.3, 42.8)},
    "Co-Prop (ours)": {"ResNet": (78.5, 87.2, 57.2, 68.4, 30.2, 35.8), "PVT-v2": (83.7, 90.9, 63.6, 74.0, 39.6, 44.4)},
}
_T1_COLS = [("S4", "J"), ("S4", "F"), ("M3", "J"), ("M3", "F"), ("AVSS", "J"), ("AVSS", "F")]

# Tables 2a, 2b, 4, 5, 6: row -> (M3 J, M3 F, S4 J, S4 F)
TABLE2A = {  # KPF / RCPG / AIP switched on (+) or off (-)
    "KPF- RCPG- AIP-": (58.63, 69.71, 79.51, 88.24),
    "KPF+ RCPG- AIP-": (58.82, 70.05, 80.89, 89.03),
    "KPF+ RCPG+ AIP-": (61.97, 72.13, 82.21, 89.94),
    "KPF+ RCPG+ AIP+": (63.58, 73.96, 83.71, 90.86),
}
TABLE2B = {
    "Cosine": (59.21, 70.45, 81.22, 89.13),
    "1-step": (61.05, 70.83, 81.45, 89.22),
    "3-step": (61.85, 71.22, 81.72, 89.31),
    "RCPG": (63.58, 73.96, 83.71, 90.86),
}
TABLE4 = {
    "Co-Prop": (63.6, 74.0, 83.7, 90.9),
    "Text-guided": (52.8, 63.7, 78.5, 87.1),
}
TABLE5 = {
    "AOT": (62.97, 72.13, 82.21, 89.94),
    "1-layer": (63.25, 73.31, 82.97, 90.47),
    "4-layer": (63.58, 73.96, 83.71, 90.86),
}
TABLE6 = {
    "All Frames": (63.58, 73.96, 83.71, 90.86),
    "Key Frames": (59.82, 70.59, 79.25, 86.55),
    "Normal Frames": (65.19, 75.39, 85.03, 92.37),
}
_ABL_COLS = [("M3", "J"), ("M3", "F"), ("S4", "J"), ("S4", "F")]

# Table 3: dataset -> (videos, average categories per video, share of videos with category changes in %)
TABLE3 = {"S4": (740, 1.0, 0.0), "M3": (64, 1.375, 26.56), "MOC": (17, 2.176, 100.0)}

_ABLATIONS = {"2a": (TABLE2A, "PVT-v2"), "2b": (TABLE2B, "PVT-v2"), "4": (TABLE4, PVT_NOT_STATED),
              "5": (TABLE5, PVT_NOT_STATED), "6": (TABLE6, PVT_NOT_STATED)}


def paper_table(table: str, backbone: str = "PVT-v2") -> pd.DataFrame:
    """The paper's table as printed: one row per method, columns ``paper: <data> <J|F>``.

    ``table`` is '1', '2a', '2b', '3', '4', '5' or '6'; ``backbone`` selects Table 1's 'PVT-v2' or 'ResNet' rows.
    """
    table = str(table)
    if table == "1":
        rows = [{"method": m, **{_col(d, k): v for (d, k), v in zip(_T1_COLS, by_bb[backbone])}}
                for m, by_bb in TABLE1.items()]
        df = pd.DataFrame(rows)
        df.insert(1, "paper backbone", backbone)
        return df
    if table == "3":
        return pd.DataFrame([{"dataset": k, "paper: videos": v[0], "paper: avg categories": v[1],
                              "paper: category changes %": v[2]} for k, v in TABLE3.items()])
    if table not in _ABLATIONS:
        raise KeyError(f"no paper table {table!r}; have 1, 2a, 2b, 3, 4, 5, 6")
    values, bb = _ABLATIONS[table]
    df = pd.DataFrame([{"method": m, **{_col(d, k): v for (d, k), v in zip(_ABL_COLS, vals)}}
                       for m, vals in values.items()])
    df.insert(1, "paper backbone", bb)
    return df


def _col(dataset: str, metric: str) -> str:
    return f"paper: {dataset} {metric} ({AVSBENCH[dataset].split(' (')[0]})"


def beside(ours: pd.DataFrame, table: str, row_map: dict[str, str], key: str = "method",
           datasets: tuple[str, ...] | None = None, backbone: str = "PVT-v2") -> pd.DataFrame:
    """``ours`` with the paper's columns appended; ``row_map`` maps our row label -> the paper's row label.

    Rows without a paper counterpart get empty paper cells; ``datasets`` limits the paper columns (e.g. to
    ('M3',) when our run stands in for multi-source data only).
    """
    paper = paper_table(table, backbone).set_index("method")
    cols = [c for c in paper.columns if c.startswith("paper: ")
            and (datasets is None or any(c.startswith(f"paper: {d} ") for d in datasets))]
    out = ours.copy()
    out["paper row"] = [row_map.get(str(k), "") for k in out[key]]
    for c in cols:
        out[c] = [paper.at[r, c] if r in paper.index else None for r in out["paper row"]]
    if "paper backbone" in paper.columns:
        out["paper backbone"] = [paper.at[r, "paper backbone"] if r in paper.index else "" for r in out["paper row"]]
    return out
