"""`manage.py demo_owner`: who owns the search `make demo` starts, so that it shows on the web.

The first superuser if there is one; otherwise a user "demo", made on the first call with a
password generated then and said once on the terminal (it is stored hashed, like any password,
and never written anywhere else). Prints the username alone on stdout, for the Makefile; what a
person needs to know goes to stderr.
"""

from __future__ import annotations

import secrets

from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand

from ..plain import PlainErrors

DEMO_USERNAME = "demo"


class Command(PlainErrors, BaseCommand):
    help = "Print the username that owns the demo search (the first superuser, or a demo user made now)."

    def handle(self, *args, **options) -> None:
        users = get_user_model()
        superuser = users.objects.filter(is_superuser=True, is_active=True).order_by("pk").first()
        if superuser is not None:
            self.stderr.write(f"The demo search belongs to {superuser.get_username()}, the first superuser.")
            self.stdout.write(superuser.get_username())
            return
        demo = users.objects.filter(username=DEMO_USERNAME).first()
        if demo is None:
            password = secrets.token_urlsafe(12)
            users.objects.create_user(DEMO_USERNAME, password=password)
            self.stderr.write(
                f"Made a user for the demo: log in as {DEMO_USERNAME} with the password {password} "
                "(shown this once; `manage.py changepassword demo` sets another)."
            )
        else:
            self.stderr.write(
                f"The demo search belongs to {DEMO_USERNAME} (its password was shown when it was made; "
                "`manage.py changepassword demo` sets another)."
            )
        self.stdout.write(DEMO_USERNAME)
