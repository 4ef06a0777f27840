"""The network grows as match requests finish: a worker that stores a result folds its
seizure links in, and the network holds exactly the links planted in the simulated scenario
that the requester may see."""

from __future__ import annotations

from lims import jobs
from lims.models import CaseShare
from tests.lims.test_match_requests import (  # noqa: F401  (fixtures)
    investigator,
    request_body,
    world,
)


def _network_pairs(caller):
    network = caller.get("/api/v1/intelligence/network").get_json()
    reference = {node["id"]: node["reference"] for node in network["nodes"]}
    return {
        (frozenset((reference[edge["source"]], reference[edge["target"]])), edge["strongest"])
        for edge in network["edges"]
    }


def test_finished_requests_grow_the_network_to_exactly_the_planted_links(
    app, world, investigator, session  # noqa: F811
):
    truth = {(frozenset((r.item1.rsplit("-", 1)[0], r.item2.rsplit("-", 1)[0])), r.relationship)
             for r in world.scenario.relationships}
    assert truth == {(frozenset(("SZ-A", "SZ-B")), "same_animal"),
                     (frozenset(("SZ-A", "SZ-C")), "parent_offspring")}
    assert _network_pairs(investigator) == set()

    share = CaseShare(case_id=world.case_ids["B"], agency_id=investigator.agency_id)
    session.add(share)
    session.commit()
    body = request_body(world, analyses=["identity", "kinship"])
    assert investigator.post("/api/v1/match-requests", json=body).status_code == 201
    assert len(jobs.run_queued(app)) == 1
    assert _network_pairs(investigator) == truth

    # Once the share is withdrawn, SZ-C (agency B's) and its link leave the network.
    session.delete(share)
    session.commit()
    assert _network_pairs(investigator) == {(frozenset(("SZ-A", "SZ-B")), "same_animal")}
