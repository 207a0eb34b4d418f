"""dnflow settings: one file, every value read from the environment.

Local defaults are safe for a laptop (SQLite and a data folder inside the project, DEBUG on);
production misconfiguration fails loudly at start-up instead of running insecurely.
"""

import os
from pathlib import Path

import dj_database_url
from django.core.exceptions import ImproperlyConfigured

BASE_DIR = Path(__file__).resolve().parent.parent

# The key a fresh checkout uses; refused whenever DEBUG is off.
_INSECURE_DEFAULT_KEY = "dnflow-insecure-local-development-key"


def env_str(name: str, default: str = "") -> str:
    return os.environ.get(name, default)


def env_bool(name: str, default: bool) -> bool:
    value = os.environ.get(name)
    if value is None or value == "":
        return default
    if value.lower() in ("1", "true", "yes", "on"):
        return True
    if value.lower() in ("0", "false", "no", "off"):
        return False
    raise ImproperlyConfigured(f"{name}={value!r} is not a boolean: use 1/0, true/false, yes/no or on/off.")


def env_int(name: str, default: int, *, minimum: int | None = None) -> int:
    value = os.environ.get(name, "")
    if value == "":
        return default
    try:
        number = int(value)
    except ValueError:
        raise ImproperlyConfigured(f"{name}={value!r} is not a whole number.") from None
    return _at_least(name, number, minimum)


def env_float(name: str, default: float, *, minimum: float | None = None) -> float:
    value = os.environ.get(name, "")
    if value == "":
        return default
    try:
        number = float(value)
    except ValueError:
        raise ImproperlyConfigured(f"{name}={value!r} is not a number.") from None
    return _at_least(name, number, minimum)


def _at_least(name: str, number, minimum):
    # 0 heartbeats a second, -3 sample rows, a limit of -1 bytes: accepted, they made busy loops,
    # empty files or refusals that blamed the person's archive.
    if minimum is not None and number < minimum:
        raise ImproperlyConfigured(f"{name}={number} is too small: it takes {minimum} or more (unset: its default).")
    return number


def env_choice(name: str, default: str, choices: tuple[str, ...]) -> str:
    """One of `choices`, matched without regard to case."""
    value = os.environ.get(name, "").strip()
    if value == "":
        return default
    for choice in choices:
        if value.lower() == choice.lower():
            return choice
    raise ImproperlyConfigured(f"{name}={value!r} is not one of {', '.join(choices)}.")


def env_url(name: str, default: str, schemes: tuple[str, ...]) -> str:
    """A URL whose scheme is one of `schemes` (empty stays empty where the default is)."""
    value = env_str(name, default).strip()
    if value and not value.lower().startswith(tuple(f"{scheme}://" for scheme in schemes)):
        raise ImproperlyConfigured(
            f"{name}={value!r} does not start with {' or '.join(f'{scheme}://' for scheme in schemes)}: "
            f"write the whole address, for example {schemes[0]}://{value.split('//')[-1]}."
        )
    return value


DEBUG = env_bool("DEBUG", True)
SECRET_KEY = env_str("SECRET_KEY", _INSECURE_DEFAULT_KEY)
if not DEBUG and SECRET_KEY in ("", _INSECURE_DEFAULT_KEY):
    raise ImproperlyConfigured(
        "DEBUG is off but SECRET_KEY is missing or the local default. Set SECRET_KEY to a long "
        'random value, for example: python -c "import secrets; print(secrets.token_urlsafe(50))"'
    )
ALLOWED_HOSTS = [h.strip() for h in env_str("ALLOWED_HOSTS", "localhost,127.0.0.1,[::1]").split(",") if h.strip()]
CSRF_TRUSTED_ORIGINS = [o.strip() for o in env_str("CSRF_TRUSTED_ORIGINS", "").split(",") if o.strip()]

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "django.contrib.humanize",
    "django_htmx",
    # Before django_rq, so our `manage.py rqworker` (reconcile at start, DnflowWorker) wins.
    "searches",
    "django_rq",
    "template_partials",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "django_htmx.middleware.HtmxMiddleware",
    # Last, so that it sees a view's database errors first (its process_exception runs before the others').
    "searches.middleware.DatabaseUnavailable",
]

ROOT_URLCONF = "dnflow_site.urls"
WSGI_APPLICATION = "dnflow_site.wsgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
            ],
        },
    },
]

try:
    DATABASES = {
        "default": dj_database_url.parse(
            env_str("DATABASE_URL", f"sqlite:///{BASE_DIR / 'dnflow.sqlite3'}"),
            conn_max_age=env_int("DATABASE_CONN_MAX_AGE", 0, minimum=0),
        )
    }
except ValueError as exc:  # dj_database_url's UnknownSchemeError and malformed URLs
    raise ImproperlyConfigured(
        f"DATABASE_URL is not a database URL dnflow can use ({str(exc).split('. ')[0]}). Write "
        "sqlite:///path/to/file.sqlite3 or postgres://user@host:5432/name."
    ) from None
if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    # Workers and the web write to one file: wait for the lock instead of failing at once,
    # and let readers proceed while a writer holds it.
    DATABASES["default"].setdefault("OPTIONS", {}).update(
        {"timeout": 20, "transaction_mode": "IMMEDIATE", "init_command": "PRAGMA journal_mode=WAL;"}
    )
    # Tests use a file, not memory, so real worker processes see the test database. It sits
    # beside the configured one, so two checkouts (or two DATABASE_URLs) never share it.
    _db_file = Path(DATABASES["default"]["NAME"])
    DATABASES["default"]["TEST"] = {"NAME": str(_db_file.with_name(f"test-{_db_file.name}"))}

DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

CACHES = {
    "default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"},
    # The log-in brake's counts (searches/views/accounts.py), shared by every web process. In the
    # database, which the web needs anyway: a Redis cache would take log-in down with Redis. Its
    # table is made by a migration (searches 0006), so `migrate` is all a new machine needs.
    "logins": {
        "BACKEND": "django.core.cache.backends.db.DatabaseCache",
        "LOCATION": "dnflow_login_attempts",
        # Rows beyond this are culled, oldest keys first: high, so that guessing over many usernames
        # cannot push out the counts of the one being guessed.
        "OPTIONS": {"MAX_ENTRIES": 100_000},
    },
}

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]
LOGIN_URL = "login"
LOGIN_REDIRECT_URL = "home"
LOGOUT_REDIRECT_URL = "home"

LANGUAGE_CODE = "en-us"
TIME_ZONE = env_str("TIME_ZONE", "UTC")
USE_I18N = True
USE_TZ = True

STATIC_URL = "static/"
STATICFILES_DIRS = [BASE_DIR / "static"]
STATIC_ROOT = Path(env_str("STATIC_ROOT", str(BASE_DIR / "staticfiles")))

# Production hardening: on whenever DEBUG is off, each one switchable for a plain-HTTP intranet.
_https = env_bool("DNFLOW_HTTPS", not DEBUG)
SECURE_SSL_REDIRECT = _https
SESSION_COOKIE_SECURE = _https
CSRF_COOKIE_SECURE = _https
SECURE_HSTS_SECONDS = env_int("SECURE_HSTS_SECONDS", 31536000 if _https else 0, minimum=0)
SECURE_HSTS_INCLUDE_SUBDOMAINS = _https
SECURE_HSTS_PRELOAD = _https
SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https") if env_bool("DNFLOW_BEHIND_PROXY", False) else None
SECURE_CONTENT_TYPE_NOSNIFF = True
X_FRAME_OPTIONS = "DENY"

# --- Background work -------------------------------------------------------------------------
REDIS_URL = env_url("REDIS_URL", "redis://127.0.0.1:6379/0", ("redis", "rediss", "unix"))
# A search can wait hours on rate limits and photos; the timeout ends one that never returns.
DNFLOW_JOB_TIMEOUT = env_int("DNFLOW_JOB_TIMEOUT", 24 * 3600)
RQ_QUEUES = {
    "default": {"URL": REDIS_URL, "DEFAULT_TIMEOUT": DNFLOW_JOB_TIMEOUT},
}
# services.enqueue_search already waits for the transaction to commit; enqueueing right away here
# gives us the job id to store and lets a dead Redis be reported to the person who asked.
RQ = {"COMMIT_MODE": "auto"}
# Empty: each job runs Luigi's local scheduler in-process. Set to a luigid URL to share one.
DNFLOW_LUIGI_SCHEDULER_URL = env_url("DNFLOW_LUIGI_SCHEDULER_URL", "", ("http", "https"))
DNFLOW_LUIGI_WORKERS = env_int("DNFLOW_LUIGI_WORKERS", 1, minimum=1)
# Seconds between heartbeats of a running search (and of its rq worker); three missed ones and the
# reconcile sweep treats the search as lost (see searches/worker.py).
DNFLOW_WORKER_HEARTBEAT = env_int("DNFLOW_WORKER_HEARTBEAT", 5, minimum=1)
# How often each worker sweeps for searches that never reached the queue or lost their worker.
DNFLOW_RECONCILE_INTERVAL = env_int("DNFLOW_RECONCILE_INTERVAL", 60, minimum=1)
# The longest wait, in seconds, between a worker's attempts to reach Redis during an outage (the
# waits grow 1, 2, 4... up to this): longer spares Redis a crowd of reconnecting workers, shorter
# resumes sooner after it is back.
DNFLOW_REDIS_RETRY_CAP = env_int("DNFLOW_REDIS_RETRY_CAP", 30, minimum=1)
# A search whose worker died is queued again (to resume) this many times in a row, then fails.
DNFLOW_LOST_SEARCH_RETRIES = env_int("DNFLOW_LOST_SEARCH_RETRIES", 2, minimum=0)

# --- Data and the X API -------------------------------------------------------------------------
DNFLOW_DATA_DIR = Path(env_str("DNFLOW_DATA_DIR", str(BASE_DIR / "data"))).resolve()
# Never put this in job arguments, Luigi parameters, logs or TaskEvents: read it where it is used.
X_BEARER_TOKEN = env_str("X_BEARER_TOKEN", "")
DNFLOW_X_API_URL = env_str("DNFLOW_X_API_URL", "https://api.x.com").rstrip("/")
DNFLOW_MAX_COUNT = env_int("DNFLOW_MAX_COUNT", 100_000, minimum=1)
DNFLOW_DEFAULT_COUNT = env_int("DNFLOW_DEFAULT_COUNT", 1_000, minimum=1)
DNFLOW_PRICE_PER_POST = env_float("DNFLOW_PRICE_PER_POST", 0.005, minimum=0)
DNFLOW_MAX_PHOTOS = env_int("DNFLOW_MAX_PHOTOS", 500, minimum=0)
DNFLOW_PHOTO_MAX_BYTES = env_int("DNFLOW_PHOTO_MAX_BYTES", 10 * 1024 * 1024, minimum=1)
DNFLOW_FETCH_PHOTOS = env_bool("DNFLOW_FETCH_PHOTOS", True)
# The largest archive the web form takes (0: no limit). Bigger ones are imported on the server
# with `manage.py run_search --archive`, which has no limit. 16 GiB: about 4 million v1.1 posts.
DNFLOW_MAX_UPLOAD_BYTES = env_int("DNFLOW_MAX_UPLOAD_BYTES", 16 * 1024**3, minimum=0)
# The most one import may hold once decompressed (0: no limit), upload or `run_search --archive`:
# a small gzip must not fill the disk (see pipeline.formats.limits, which also stops a gzip that
# expands more than 100 times). 32 GiB: twice the largest upload, about 9 million v1.1 posts.
DNFLOW_MAX_ARCHIVE_BYTES = env_int("DNFLOW_MAX_ARCHIVE_BYTES", 32 * 1024**3, minimum=0)
# Unset: uploads in progress go to DNFLOW_DATA_DIR/uploads/.incoming/, on the disk they end up on
# (moved into place by a rename), not to the system's /tmp (see searches.uploads).
FILE_UPLOAD_TEMP_DIR = env_str("FILE_UPLOAD_TEMP_DIR", "") or None
FILE_UPLOAD_HANDLERS = [
    "searches.uploads.UploadSizeLimit",  # first: it skips a file before the others keep more of it
    "django.core.files.uploadhandler.MemoryFileUploadHandler",
    "searches.uploads.TemporaryFileOrDiskFull",  # Django's temporary file, with a full disk explained
]
# Photo URLs come from the posts, so an uploaded archive chooses them: by default a photo host that
# is not a public address (loopback, private, link-local) is refused (see pipeline.photos).
DNFLOW_PHOTO_PRIVATE_ADDRESSES = env_bool("DNFLOW_PHOTO_PRIVATE_ADDRESSES", False)
DNFLOW_SAMPLE_SIZE = env_int("DNFLOW_SAMPLE_SIZE", 10, minimum=1)
# "copy" (default): archives are copied byte for byte. "link": a single plain JSONL archive on the
# same filesystem is hard-linked instead: faster, but an in-place edit of the original changes the raw posts.
DNFLOW_ARCHIVE_IMPORT = env_choice("DNFLOW_ARCHIVE_IMPORT", "copy", ("copy", "link"))
# A raw file of at least DNFLOW_SUMMARISE_PARALLEL_BYTES is summarised in byte ranges, one process
# each, DNFLOW_SUMMARISE_PROCESSES of them (0: one per CPU, at most 8; 1: never in parallel).
DNFLOW_SUMMARISE_PROCESSES = env_int("DNFLOW_SUMMARISE_PROCESSES", 0, minimum=0)
DNFLOW_SUMMARISE_PARALLEL_BYTES = env_int("DNFLOW_SUMMARISE_PARALLEL_BYTES", 20 * 1024 * 1024, minimum=1)
# The upper bound on any 429 wait we honour, and the retry budget for 5xx / connection errors.
DNFLOW_MAX_RATE_LIMIT_WAIT = env_int("DNFLOW_MAX_RATE_LIMIT_WAIT", 16 * 60, minimum=0)
DNFLOW_API_RETRIES = env_int("DNFLOW_API_RETRIES", 5, minimum=0)

LOG_LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL")
LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {"plain": {"format": "%(asctime)s %(levelname)s %(name)s: %(message)s"}},
    "handlers": {"console": {"class": "logging.StreamHandler", "formatter": "plain"}},
    "root": {"handlers": ["console"], "level": env_choice("LOG_LEVEL", "WARNING", LOG_LEVELS)},
    "loggers": {
        "dnflow": {"level": env_choice("DNFLOW_LOG_LEVEL", "INFO", LOG_LEVELS), "propagate": True},
        "luigi-interface": {"level": "WARNING"},
    },
}
