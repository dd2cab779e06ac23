"""``Source`` and ``SourceStream`` describe a file with one set of fields (:class:`gis.io.SourceInfo`)."""

from __future__ import annotations

from dataclasses import fields

import numpy as np
import pandas as pd
import shapely

from gis.crs import CrsRef
from gis.io import Source, SourceInfo, SourceStream


def test_the_file_metadata_is_declared_once() -> None:
    """Only the rows differ: a metadata field added to one of them alone fails here."""
    info = {f.name for f in fields(SourceInfo)}
    assert {"crs", "format", "crs_implicit", "layer", "encoding", "layers_available", "notes", "row_errors"} <= info
    assert {f.name for f in fields(Source)} - info == {"frame", "geometry"}
    assert {f.name for f in fields(SourceStream)} - info == {"columns", "total", "batches"}


def test_as_stream_carries_every_metadata_field() -> None:
    geoms = np.empty(2, dtype=object)
    geoms[:] = [shapely.Point(114.5, 38.0), None]
    source = Source(
        pd.DataFrame({"名称": ["甲", "乙"]}), geoms, crs=CrsRef("epsg", 4547), format="gpkg", crs_implicit=True,
        layer="小区", encoding="GB18030", layers_available=["小区", "道路"], notes=["Z dropped"],
        row_errors=[(1, "no geometry")],
    )
    stream = source.as_stream()
    assert stream.info_fields() == source.info_fields()
    assert (stream.crs, stream.format, stream.layer, stream.encoding) == (CrsRef("epsg", 4547), "gpkg", "小区",
                                                                          "GB18030")
    assert stream.columns == ["名称"] and stream.total == 2
    (batch,) = list(stream.batches())
    assert batch.start == 0 and list(batch.frame["名称"]) == ["甲", "乙"]
