#!/usr/bin/env python
"""Django's command-line utility for dnflow."""

import os
import sys


def main() -> None:
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "dnflow_site.settings")
    from django.core.exceptions import ImproperlyConfigured
    from django.core.management import execute_from_command_line

    try:
        execute_from_command_line(sys.argv)
    except ImproperlyConfigured as exc:
        # A bad setting (dnflow_site/settings.py reads each from the environment and says what is wrong).
        sys.stderr.write(
            f"dnflow is not configured correctly: {exc} Fix that environment variable (the README's "
            "Configuration lists them all), then run this again.\n"
        )
        sys.exit(2)


if __name__ == "__main__":
    main()
