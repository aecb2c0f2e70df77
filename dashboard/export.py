"""CSV and Excel of what a page shows, with local times and the readings' names in the user's language."""

from __future__ import annotations

import io

import pandas as pd

from orchard.catalogue import CATALOGUE


def table(df: pd.DataFrame, lang: str) -> pd.DataFrame:
    """The long table as shown: local time without offset (Excel cannot store one), reading name and unit."""
    def name(f: str) -> str:
        spec = CATALOGUE.get(f)
        return f if spec is None else f"{spec.zh if lang == 'zh' else spec.en} ({spec.unit})"

    out = pd.DataFrame({
        "time": df["time"].dt.tz_localize(None),
        "plot": df["plot"],
        "device": df["device"],
        "depth_cm": df["depth_cm"],
        "reading": df["field"].map(name),
        "value": df["value"],
        "min": df["min"],
        "max": df["max"],
    })
    return out.dropna(axis=1, how="all")


def csv_bytes(df: pd.DataFrame) -> bytes:
    return df.to_csv(index=False).encode("utf-8-sig")  # the BOM makes Excel read the Chinese names right


def excel_bytes(df: pd.DataFrame) -> bytes:
    buf = io.BytesIO()
    df.to_excel(buf, index=False, sheet_name="readings")
    return buf.getvalue()
