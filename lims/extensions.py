"""The application's extensions, created once and bound to each app in ``create_app``."""

from flask_login import LoginManager
from flask_wtf.csrf import CSRFProtect

from lims.database import Database

db = Database()
csrf = CSRFProtect()
login_manager = LoginManager()
