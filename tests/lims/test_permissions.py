"""The permission matrix: every permission is used, and its documentation points at real code."""

from __future__ import annotations

import importlib
import re

import lims.permissions
from lims.permissions import PERMISSIONS


def test_every_permission_guards_an_api_endpoint(app):
    guarded = {
        permission
        for view in app.view_functions.values()
        for permission in getattr(getattr(view, "openapi", None), "permission", ())
    }
    assert set(PERMISSIONS) <= guarded


def test_the_modules_named_in_the_documentation_exist():
    named = re.findall(r":mod:`([\w.]+)`", lims.permissions.__doc__)
    assert named
    for module in named:
        importlib.import_module(module)
