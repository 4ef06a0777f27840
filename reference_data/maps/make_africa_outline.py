"""Make ``africa_countries.geo.json`` from the Natural Earth shapefile inside geopandas 0.14.

Natural Earth (public domain) ships in geopandas 0.14.x as ``naturalearth_lowres``: the
1:110m admin-0 countries with their continent. This script reads that shapefile and its
attribute table directly (the formats are simple; geopandas is not needed, here or at run
time), keeps the countries whose continent is Africa, rounds coordinates to 0.01° (about a
kilometre, well below what the 1:110m outlines resolve) and writes a GeoJSON FeatureCollection
with each country's name and ISO 3166-1 alpha-3 code.

Run once, from the repository root, after fetching the wheel with pip::

    pip download geopandas==0.14.4 --no-deps -d /tmp/gpd
    python reference_data/maps/make_africa_outline.py /tmp/gpd/geopandas-0.14.4-py3-none-any.whl

The output is deterministic for a given wheel; README.md beside it records which one.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import struct
import zipfile
from pathlib import Path

SHAPEFILE = "geopandas/datasets/naturalearth_lowres/naturalearth_lowres"
OUTPUT = Path(__file__).resolve().parent / "africa_countries.geo.json"
POLYGON = 5
DECIMALS = 2


def read_dbf(data: bytes, encoding: str) -> list[dict[str, str]]:
    """The records of a dBASE III table as ``{field: text}`` (trailing blanks removed)."""
    n_records, header_size, record_size = struct.unpack("<IHH", data[4:12])
    fields = []
    offset = 32
    while data[offset] != 0x0D:
        name = data[offset:offset + 11].split(b"\0", 1)[0].decode("ascii")
        fields.append((name, data[offset + 16]))
        offset += 32
    records = []
    for k in range(n_records):
        start = header_size + k * record_size
        position = start + 1  # the deletion flag comes first
        record = {}
        for name, width in fields:
            record[name] = data[position:position + width].decode(encoding).strip()
            position += width
        records.append(record)
    return records


def read_polygons(data: bytes) -> list[list[list[tuple[float, float]]]]:
    """Each record of a polygon shapefile as its list of rings (lists of ``(lon, lat)``)."""
    shape_type = struct.unpack("<i", data[32:36])[0]
    if shape_type != POLYGON:
        raise ValueError(f"expected a polygon shapefile (type 5), got type {shape_type}")
    shapes = []
    offset = 100
    while offset < len(data):
        content_words = struct.unpack(">i", data[offset + 4:offset + 8])[0]
        content = data[offset + 8:offset + 8 + 2 * content_words]
        offset += 8 + 2 * content_words
        if struct.unpack("<i", content[:4])[0] != POLYGON:
            raise ValueError("a record of the shapefile is not a polygon")
        n_parts, n_points = struct.unpack("<ii", content[36:44])
        starts = list(struct.unpack(f"<{n_parts}i", content[44:44 + 4 * n_parts]))
        points_at = 44 + 4 * n_parts
        points = [struct.unpack("<dd", content[points_at + 16 * i:points_at + 16 * (i + 1)])
                  for i in range(n_points)]
        bounds = [*starts, n_points]
        shapes.append([points[bounds[p]:bounds[p + 1]] for p in range(n_parts)])
    return shapes


def signed_area(ring: list[tuple[float, float]]) -> float:
    """Shoelace area; negative for clockwise rings (shapefile outer rings are clockwise)."""
    return 0.5 * sum(x1 * y2 - x2 * y1 for (x1, y1), (x2, y2) in zip(ring, ring[1:] + ring[:1]))


def rounded(ring: list[tuple[float, float]]) -> list[list[float]]:
    """The ring with rounded coordinates, repeated points dropped, still closed."""
    out: list[list[float]] = []
    for lon, lat in ring:
        point = [round(lon, DECIMALS), round(lat, DECIMALS)]
        if not out or point != out[-1]:
            out.append(point)
    if out[0] != out[-1]:
        out.append(out[0])
    return out


def multipolygon(rings: list[list[tuple[float, float]]]) -> list:
    """GeoJSON MultiPolygon coordinates: each clockwise (outer) ring starts a polygon, the
    counter-clockwise rings after it are its holes; GeoJSON winding (outer rings
    counter-clockwise) is applied."""
    polygons: list[list] = []
    for ring in rings:
        ring = rounded(ring)
        if len(ring) < 4:
            continue
        if signed_area(ring) < 0:
            polygons.append([ring[::-1]])
        elif polygons:
            polygons[-1].append(ring[::-1])
    return polygons


def africa(wheel: Path) -> dict:
    with zipfile.ZipFile(wheel) as archive:
        shapes = read_polygons(archive.read(SHAPEFILE + ".shp"))
        # The .cpg file names the attribute table's text encoding (ISO-8859-1 here).
        encoding = archive.read(SHAPEFILE + ".cpg").decode("ascii").strip()
        records = read_dbf(archive.read(SHAPEFILE + ".dbf"), encoding)
    if len(shapes) != len(records):
        raise ValueError(f"{len(shapes)} shapes but {len(records)} attribute records")
    features = []
    for rings, record in sorted(zip(shapes, records, strict=True), key=lambda x: x[1]["name"]):
        if record["continent"] != "Africa":
            continue
        features.append({
            "type": "Feature",
            "properties": {"name": record["name"], "iso_a3": record["iso_a3"]},
            "geometry": {"type": "MultiPolygon", "coordinates": multipolygon(rings)},
        })
    return {"type": "FeatureCollection", "features": features}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("wheel", type=Path, help="geopandas-0.14.x wheel (or sdist zip)")
    args = parser.parse_args()
    collection = africa(args.wheel)
    OUTPUT.write_text(json.dumps(collection, separators=(",", ":")) + "\n")
    digest = hashlib.sha256(args.wheel.read_bytes()).hexdigest()
    print(f"{len(collection['features'])} countries -> {OUTPUT} (from {args.wheel.name}, "
          f"sha256 {digest})")


if __name__ == "__main__":
    main()
