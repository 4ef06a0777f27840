"""The dnatrack LIMS: a Flask application for evidence, custody, genotypes and matching.

Create the application with :func:`create_app`; the schema comes from the migrations
(``dnatrack db upgrade``), never from ``create_all``.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import Any

from flask import Flask
from werkzeug.middleware.proxy_fix import ProxyFix

from lims.config import Config, instance_secret_key


def create_app(config: Mapping[str, Any] | None = None) -> Flask:
    """Build the LIMS application.

    Parameters
    ----------
    config
        Settings overriding :class:`lims.config.Config` and the ``DNATRACK_*`` environment
        variables, e.g. ``{"DATABASE_URL": "postgresql+psycopg://…"}``. ``INSTANCE_PATH``
        (or ``DNATRACK_INSTANCE_PATH``) moves the instance folder, which holds the default
        SQLite database and the generated secret key.

    Raises
    ------
    lims.security.WeakSecretKeyError
        When the secret key is a known default, short or regular, unless ``DEMO`` or
        ``TESTING`` is set.
    ValueError
        When ``LOG_LEVEL`` or ``LOG_FORMAT`` is not one :mod:`lims.logging_config` knows.
    """
    instance_path = (config or {}).get("INSTANCE_PATH") or os.environ.get("DNATRACK_INSTANCE_PATH")
    app = Flask(
        __name__,
        instance_path=os.path.abspath(instance_path) if instance_path else None,
        instance_relative_config=True,
    )
    app.config.from_object(Config)
    app.config.from_prefixed_env(prefix="DNATRACK")
    if config:
        app.config.update(config)
    if not app.config.get("SECRET_KEY"):
        app.config["SECRET_KEY"] = instance_secret_key(app.instance_path)

    from lims import api, auth, jobs, logging_config, security, web
    from lims.api.routing import RecordIdConverter
    from lims.errors import register_error_handlers
    from lims.extensions import csrf, db, login_manager
    from lims.reports import views as report_pages

    logging_config.init_app(app)
    security.init_app(app)
    proxies = int(app.config["PROXY_COUNT"])
    if proxies:
        app.wsgi_app = ProxyFix(app.wsgi_app, x_for=proxies, x_proto=proxies)
    db.init_app(app)
    csrf.init_app(app)
    login_manager.init_app(app)
    login_manager.login_view = "auth.login"
    app.url_map.converters["int"] = RecordIdConverter

    app.register_blueprint(auth.bp)
    app.register_blueprint(web.bp)
    app.register_blueprint(report_pages.bp)
    app.register_blueprint(api.bp, url_prefix="/api/v1")
    # The API checks CSRF itself, only for cookie-authenticated writes (see lims.api).
    csrf.exempt(api.bp)
    register_error_handlers(app)
    jobs.init_app(app)
    return app
