import pytest

from matching.links import link_seizures

SEIZURE_OF = {
    "A1": "SZ-A", "A2": "SZ-A", "B1": "SZ-B", "C1": "SZ-C", "D1": "SZ-D", "E1": "SZ-E",
    "F1": "SZ-F",
}


def pair(s1, s2, relationship, lr=None):
    return {"sample1": s1, "sample2": s2, "relationship": relationship, "log10_lr": lr}


def test_edges_carry_their_evidence_and_components_follow_links():
    graph = link_seizures(
        [
            pair("A1", "B1", "same_animal", 14.2),
            pair("B1", "A2", "parent_offspring", 5.0),
            pair("C1", "B1", "half_sibling", 3.5),
            pair("D1", "E1", "full_sibling", 4.4),
            pair("A1", "A2", "full_sibling", 6.0),  # inside one seizure: not an edge
        ],
        SEIZURE_OF,
    )
    edges = {(link.seizure1, link.seizure2): link for link in graph.links}
    assert set(edges) == {("SZ-A", "SZ-B"), ("SZ-B", "SZ-C"), ("SZ-D", "SZ-E")}
    ab = edges[("SZ-A", "SZ-B")]
    assert ab.n_pairs == 2
    assert ab.same_animal is True
    assert ab.relationships == {"same_animal": 1, "parent_offspring": 1}
    assert ab.max_log10_lr == 14.2
    assert ab.weight == pytest.approx(19.2)
    assert edges[("SZ-D", "SZ-E")].same_animal is False
    assert graph.components == [["SZ-A", "SZ-B", "SZ-C"], ["SZ-D", "SZ-E"]]
    assert [p["seizure"] for p in graph.within_seizure] == ["SZ-A"]
    rows = graph.link_rows()
    assert rows[0]["relationships"] == "parent_offspring:1;same_animal:1"
    assert {row["component"] for row in rows} == {0, 1}
    assert graph.as_dict()["components"] == graph.components


def test_identity_pairs_without_lr_and_unknown_samples():
    graph = link_seizures([pair("E1", "F1", "same_animal")], SEIZURE_OF)
    assert graph.links[0].max_log10_lr is None and graph.links[0].same_animal
    with pytest.raises(ValueError, match="no seizure known for sample 'Z9'"):
        link_seizures([pair("A1", "Z9", "same_animal")], SEIZURE_OF)
    assert link_seizures([], SEIZURE_OF).components == []
