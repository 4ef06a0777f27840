"""matching.intelligence: weight classes, trends, country roles and their Ward clustering,
checked against tallies worked out by hand and against scipy's own linkage on the features."""

from __future__ import annotations

import datetime as dt

import numpy as np
import pytest

from matching.intelligence import (
    CountryRole,
    SeizureFacts,
    country_roles,
    data_statement,
    role_features,
    trends,
    ward_clusters,
    weight_class,
)


@pytest.mark.parametrize(
    ("kg", "expected"),
    [(0.0, "< 10 kg"), (9.999, "< 10 kg"), (10.0, "10 to < 100 kg"), (499.9, "100 to < 500 kg"),
     (500.0, "500 to < 1,000 kg"), (1000.0, ">= 1,000 kg"), (None, "weight unknown")],
)
def test_weight_class_bounds(kg, expected):
    assert weight_class(kg) == expected


@pytest.mark.parametrize("kg", [-1.0, float("nan"), float("inf")])
def test_weight_class_refuses_impossible_weights(kg):
    with pytest.raises(ValueError, match="finite weight"):
        weight_class(kg)


def _fact(i, day, discovery, kg, chain=(), commodity="ivory"):
    return SeizureFacts(i, day, discovery, commodity, kg, tuple(chain))


FACTS = [
    _fact(1, dt.date(2020, 1, 5), "KE", 600.0, ("TZ", "KE", "VN")),
    _fact(2, dt.date(2020, 7, 1), "VN", 40.0, ("TZ", "KE")),
    _fact(3, dt.date(2021, 2, 2), "TZ", None, ("XF", "CN")),
    _fact(4, None, "CN", 2.0, ("VN",), "horn"),
    _fact(5, dt.date(2021, 3, 3), "XF", 5.0, ("KE",)),
]


def test_country_roles_by_hand():
    roles = {role.country: role for role in country_roles(FACTS, exclude={"XF"})}
    # KE: in = seizure 1; out = 2 (chain names KE, found in VN) and 5 (found in XF).
    assert roles["KE"] == CountryRole("KE", 1, 2, 600.0, 45.0, 1, 0)
    assert roles["KE"].le_ratio == pytest.approx(1 / 3)
    # TZ: in = 3 (no weight); out = 1 and 2.
    assert roles["TZ"] == CountryRole("TZ", 1, 2, 0.0, 640.0, 0, 1)
    # VN: in = 2; out = 1 and 4.
    assert roles["VN"] == CountryRole("VN", 1, 2, 40.0, 602.0, 0, 1)
    # CN: in = 4; out = 3.
    assert roles["CN"] == CountryRole("CN", 1, 1, 2.0, 0.0, 0, 0)
    assert set(roles) == {"KE", "TZ", "VN", "CN"}


def test_a_country_only_in_chains_has_ratio_zero_and_none_without_seizures():
    (role,) = country_roles([_fact(1, None, None, 1.0, ("AO",))])
    assert role.le_ratio == 0.0
    assert CountryRole("ZZ", 0, 0, 0.0, 0.0, 0, 0).le_ratio is None


def test_trends_by_hand():
    result = trends(FACTS)
    assert [(r["year"], r["commodity"], r["weight_class"], r["seizures"], r["weight_kg"])
            for r in result["rows"]] == [
        (2020, "ivory", "10 to < 100 kg", 1, 40.0),
        (2020, "ivory", "500 to < 1,000 kg", 1, 600.0),
        (2021, "ivory", "< 10 kg", 1, 5.0),
        (2021, "ivory", "weight unknown", 1, 0.0),
    ]
    assert result["data"]["seizures"] == 5 and result["data"]["undated"] == 1
    assert result["data"]["years"] == [2020, 2021]
    assert data_statement([])["seizures"] == 0


def test_features_are_log_standardised_columns():
    roles = country_roles(FACTS, exclude={"XF"})
    features = role_features(roles)
    raw = np.log1p([[r.seizures_in - r.large_in, r.large_in, r.seizures_out - r.large_out,
                     r.large_out, r.weight_in_kg, r.weight_out_kg] for r in roles])
    for column in range(6):
        values = raw[:, column]
        if values.std() == 0:
            assert np.all(features[:, column] == 0)
        else:
            assert np.allclose(features[:, column], (values - values.mean()) / values.std())


def test_ward_clustering_separates_transit_hubs_from_source_countries():
    sources = [CountryRole(c, 30, 2, 3000.0, 50.0, 3, 0) for c in ("KE", "TZ", "MZ")]
    hubs = [CountryRole(c, 1, 40, 5.0, 9000.0, 0, 8) for c in ("AE", "MY", "SG")]
    labels = ward_clusters([sources[0], hubs[0], sources[1], hubs[1], sources[2], hubs[2]], 2)
    assert labels == [1, 2, 1, 2, 1, 2]
    assert ward_clusters(sources[:1], 3) == [1]
    assert ward_clusters([], 3) == []
    with pytest.raises(ValueError, match="at least 1"):
        ward_clusters(sources, 0)
