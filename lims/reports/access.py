"""Need-to-know for match requests and reports: they are seen with their case, and their
results as the reader may see them now.

A match request belongs to a case; whoever may read the case (:func:`lims.access.case_ids`)
sees its requests and their reports, and whoever may change the case's evidence (its agency,
or an agency it is shared with for ``contribute``) may request, draft and sign. The results
were filtered for the requester when the job assembled them (:mod:`lims.reports.analysis`,
:func:`hold_back`);
a share withdrawn since, or a reader who may see less than the requester, must not see more
than need-to-know allows *now*, so stored results are filtered again whenever they are read
(:func:`result_for_reader`): every seizure or animal a result shows in full is checked against
the cases the reader may read, and one they may no longer read is shown in the same reduced
("held") form as the records of other agencies (reference and holding agency, no case, place,
barcodes, genotypes or likelihood ratios). Draft reports are filtered the same way.

An issued report is evidence: its HTML and PDF are signed and hashed, and a redacted copy
would be a different document that nobody signed. So an issued document is never changed
for a reader; it is served only to readers who may still see every record it names in full
(:func:`records_withdrawn_from`), and refused, naming why, to the others. Its metadata,
signatures and hashes stay readable, the refusal is logged, and the way to give those
readers a report is the ordinary one: an amended version drafted from the results as they
may see them now, which names the version it replaces.
"""

from __future__ import annotations

import copy
from collections.abc import Sequence

import sqlalchemy as sa
from sqlalchemy.orm import Session
from sqlalchemy.sql.elements import ColumnElement

from lims.access import case_ids
from lims.models import ExchangePartner, MatchRequest, Report, Seizure, SourceAnimal, User
from lims.permissions import permissions_of

#: The records a result's node keys name: ``"seizure:<id>"``, ``"animal:<id>"`` (and
#: ``"partner:<id>"``, an exchange partner whose imported profiles matched).
NODE_MODELS = {"seizure": Seizure, "animal": SourceAnimal}
#: What a pair into a record the reader may not read keeps (as the analysis writes it).
HELD_PAIR_FIELDS = ("visible", "sample1", "node1", "node2", "relationship",
                    "relationship_label")
#: What a node the reader may not read shows no more.
HELD_NODE_BLANKS = ("case", "country", "place", "seized_on")


def request_scope(model: type, user: User, for_writing: bool) -> ColumnElement[bool]:
    """Match requests of the cases ``user`` may read (or write)."""
    return MatchRequest.case_id.in_(case_ids(user, for_writing=for_writing))


def report_scope(model: type, user: User, for_writing: bool) -> ColumnElement[bool]:
    """Reports of the match requests ``user`` may see (or act on)."""
    requests = sa.select(MatchRequest.id).where(request_scope(MatchRequest, user, for_writing))
    return Report.match_request_id.in_(requests)


def records_withdrawn_from(session: Session, result: dict | None, reader: User) -> list[str]:
    """Keys of the nodes ``result`` shows in full whose records ``reader`` may not read now
    (a share withdrawn, a record gone), in the order of the result's nodes."""
    shown: dict[str, dict[int, str]] = {}
    for key, node in ((result or {}).get("nodes") or {}).items():
        if node["visible"]:
            kind, _, record_id = key.partition(":")
            shown.setdefault(kind, {})[int(record_id)] = key
    readable = set()
    partners = shown.pop("partner", {})
    if partners and "exchange.read" in permissions_of(reader.roles):
        # An exchange partner's imported profiles are seen by its registering agency only.
        readable.update(partners[partner_id] for partner_id in session.scalars(
            sa.select(ExchangePartner.id).where(ExchangePartner.id.in_(partners),
                                                ExchangePartner.agency_id == reader.agency_id)))
    for kind, keys in shown.items():
        model = NODE_MODELS[kind]
        readable.update(keys[record_id] for record_id in session.scalars(
            sa.select(model.id).where(model.id.in_(keys), model.case_id.in_(case_ids(reader)))))
    return [key for keys in (*shown.values(), partners) for key in keys.values()
            if key not in readable]


#: The caveat a result carries when it is assembled with records the requester may not read.
HELD_CAVEAT = ("{n} linked seizure(s) or animal(s) are held by other agencies whose records you "
               "may not read: only their reference and holding agency are shown. Ask the "
               "holding agency for details.")
#: The caveat a stored result read by someone who may no longer read some of its records gets.
WITHDRAWN_CAVEAT = ("{n} linked seizure(s) or animal(s) shown in full when these results were "
                    "computed are no longer shared with you: only their reference and holding "
                    "agency are shown. Ask the holding agency for details.")


def hold_back(result: dict, keys: Sequence[str], caveat: str) -> dict:
    """``result`` with the nodes ``keys`` reduced to the held form, or ``result`` itself when
    ``keys`` is empty.

    The nodes are keyed ``held:<n>`` after the held nodes already there, in the order of
    holding agency, reference and kind (so their record ids go too); pairs and links touching
    them lose what the held form does not show; ``caveat`` (its ``{n}`` the number held back
    here) is added.
    """
    if not keys:
        return result
    result = copy.deepcopy(result)
    nodes = result["nodes"]
    held = sum(1 for key in nodes if key.startswith("held:"))
    renamed = {}
    for key in sorted(keys, key=lambda key: (nodes[key]["agency"] or "", nodes[key]["reference"],
                                             nodes[key]["kind"])):
        held += 1
        renamed[key] = f"held:{held}"

    def key_of(key: str) -> str:
        return renamed.get(key, key)

    result["nodes"] = {
        key_of(key): {**node, "visible": False, **dict.fromkeys(HELD_NODE_BLANKS)}
        if key in renamed else node
        for key, node in nodes.items()
    }
    pairs = []
    for pair in result.get("pairs") or []:
        hidden = pair["node1"] in renamed or pair["node2"] in renamed
        pair = {**pair, "node1": key_of(pair["node1"]), "node2": key_of(pair["node2"])}
        if hidden and pair["visible"]:
            pair = {name: pair[name] for name in HELD_PAIR_FIELDS if name in pair} \
                | {"visible": False}
        pairs.append(pair)
    result["pairs"] = pairs
    for link in result.get("links") or []:
        if link["node1"] in renamed or link["node2"] in renamed:
            link.update(visible=False, max_log10_lr=None)
        link["node1"], link["node2"] = key_of(link["node1"]), key_of(link["node2"])
    result["networks"] = [[key_of(key) for key in component]
                          for component in result.get("networks") or []]
    # Subject groups are in the request's case, which the reader may read; renamed all the
    # same, so no held record id is left anywhere.
    groups = [*(result.get("subject_profiles") or []), *(result.get("mixture") or []),
              *((result.get("geographic") or {}).get("surfaces") or [])]
    for group in groups:
        group["node"] = key_of(group["node"])
    result["caveats"] = [*(result.get("caveats") or []), caveat.format(n=len(renamed))]
    return result


def result_for_reader(session: Session, result: dict | None, reader: User) -> dict | None:
    """``result`` (a stored match-request result) as ``reader`` may see it now.

    Nodes the reader may no longer read are held back (:func:`hold_back`) and a caveat says
    how many were withdrawn. Returns ``result`` itself when nothing is withdrawn, otherwise a
    changed copy.
    """
    withdrawn = records_withdrawn_from(session, result, reader)
    return hold_back(result, withdrawn, WITHDRAWN_CAVEAT) if withdrawn else result


def body_for_reader(session: Session, body: dict, reader: User) -> dict:
    """A draft report's body with its result as ``reader`` may see it now."""
    result = result_for_reader(session, body.get("result"), reader)
    return body if result is body.get("result") else {**body, "result": result}
