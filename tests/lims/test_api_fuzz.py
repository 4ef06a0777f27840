"""Schemathesis over the whole API: no server error, and every answer as the OpenAPI document
says (status code, content type, body schema, headers), for data that fits the document and
data that does not.

Every other call is made with an API token of a user holding every role (so each operation
gets past its permission check and reaches its handler), the others with the tokens of users
holding one role each, in turn.
The example budget is small so the test costs seconds; ``DNATRACK_FUZZ_EXAMPLES`` raises it
for a longer run by hand::

    DNATRACK_FUZZ_EXAMPLES=100 python -m pytest tests/lims/test_api_fuzz.py -q
"""

from __future__ import annotations

import itertools
import os
from collections import Counter

import pytest
import schemathesis
from hypothesis import HealthCheck, Phase, given, settings
from schemathesis.checks import not_a_server_error
from schemathesis.core.failures import Failure, FailureGroup
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from lims.auth import new_api_token
from lims.extensions import db
from lims.models import ApiToken, GenotypeProfile, StorageLocation, User, hash_token
from lims.permissions import ROLES
from tests.lims.conftest import TEST_PANEL
from tests.lims.factories import make_case_tree

EXAMPLES = int(os.environ.get("DNATRACK_FUZZ_EXAMPLES", "3"))
CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_schema_conformance,
    response_headers_conformance,
]
MODES = (schemathesis.GenerationMode.POSITIVE, schemathesis.GenerationMode.NEGATIVE)
ONE_ROLE_EACH = [(role,) for role in ROLES]


class Callers:
    """API tokens of the fuzzing users, restored when a fuzzed call took them away (a
    revoked token, a deactivated user or changed roles)."""

    def __init__(self, app, agency_id: int) -> None:
        self.app = app
        self.agency_id = agency_id
        self.tokens: dict[tuple[str, ...], str] = {}
        self.user_ids: dict[tuple[str, ...], int] = {}
        for roles in (ROLES, *ONE_ROLE_EACH):
            self._restore(roles)
        # Every other call as the user with every role, the others as each one-role user.
        self.turns = itertools.cycle(
            [turn for roles in ONE_ROLE_EACH for turn in (ROLES, roles)]
        )

    def _restore(self, roles: tuple[str, ...]) -> None:
        token = new_api_token()
        with self.app.app_context():
            user = db.session.get(User, self.user_ids[roles]) if roles in self.user_ids else None
            if user is None:
                user = User(agency_id=self.agency_id, username=f"fuzz-{'-'.join(roles)}",
                            full_name="Fuzz")
                db.session.add(user)
            user.agency_id = self.agency_id
            user.active = True
            user.set_roles(set(roles))
            db.session.flush()
            db.session.add(ApiToken(user_id=user.id, name="fuzz", token_hash=hash_token(token)))
            db.session.commit()
            self.user_ids[roles] = user.id
        self.tokens[roles] = token

    def restore_all(self) -> None:
        for roles in list(self.tokens):
            self._restore(roles)

    def headers(self, roles: tuple[str, ...]) -> dict:
        return {"Authorization": f"Bearer {self.tokens[roles]}"}


@pytest.fixture
def world(app, session, agencies):
    """Records for the fuzzed calls to find: case trees of both agencies, a released
    profile, a storage location."""
    trees = [make_case_tree(session, agencies[code], code) for code in ("A", "B")]
    analyst = User(agency_id=agencies["A"], username="world-analyst", full_name="Analyst")
    analyst.set_roles({"analyst"})
    session.add_all([analyst, StorageLocation(agency_id=agencies["A"], name="F1",
                                              kind="freezer")])
    session.flush()
    session.add(GenotypeProfile(sample_id=trees[0].sample_ids[0], panel=TEST_PANEL["name"],
                                alleles={"FH67": [148, 152]}, n_loci_typed=1,
                                state="released", analyst_id=analyst.id))
    session.commit()
    return Callers(app, agencies["A"])


def _fuzz(operation, mode, callers: Callers, statuses: Counter, failures: dict) -> None:
    """Call ``operation`` with ``EXAMPLES`` generated requests; count the statuses answered
    and keep the first failure of the operation's checks."""
    key = f"{operation.label} ({mode})"

    @settings(
        max_examples=EXAMPLES,
        deadline=None,
        derandomize=True,
        database=None,
        phases=[Phase.explicit, Phase.generate],
        suppress_health_check=list(HealthCheck),
    )
    @given(case=operation.as_strategy(mode))
    def fuzz(case):
        response = case.call(headers=callers.headers(next(callers.turns)))
        statuses[response.status_code] += 1
        if 200 <= response.status_code < 300 and case.method != "GET" and (
            "/users" in case.path or "/tokens" in case.path
        ):
            callers.restore_all()
        try:
            case.validate_response(response, checks=CHECKS)
        except (Failure, FailureGroup) as failure:
            failures.setdefault(key, f"{key}: {failure}")

    try:
        fuzz()
    except schemathesis.errors.InvalidSchema as error:  # the operation's schema is unusable
        failures[key] = f"{key}: {error}"


def test_no_operation_answers_a_server_error_or_outside_its_schema(app, world, capsys):
    schema = schemathesis.openapi.from_wsgi("/api/v1/openapi.json", app)
    operations = [result.ok() for result in schema.get_all_operations()]
    assert len(operations) > 70
    statuses: Counter[int] = Counter()
    failures: dict[str, str] = {}  # the first failure of each operation and mode
    for operation, mode in itertools.product(operations, MODES):
        _fuzz(operation, mode, world, statuses, failures)
    with capsys.disabled():
        server_errors = sum(n for status, n in statuses.items() if status >= 500)
        print(f"\nschemathesis: {len(operations)} operations, {statuses.total()} calls, "
              f"{server_errors} server errors, {len(failures)} distinct failures; "
              f"statuses {dict(sorted(statuses.items()))}")
    assert not failures, "\n\n".join(failures.values())
